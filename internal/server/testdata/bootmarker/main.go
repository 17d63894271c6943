// Command bootmarker is the init of the test ramdisk the network boot tests boot: it prints
// a marker line with the kernel command line on the serial console and powers the machine
// off, which proves the kernel and ramdisk Ironwork served were loaded and started.
package main

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"
)

func main() {
	_ = os.MkdirAll("/dev", 0o755)
	_ = os.MkdirAll("/proc", 0o755)
	_ = syscall.Mount("devtmpfs", "/dev", "devtmpfs", 0, "")
	_ = syscall.Mount("proc", "/proc", "proc", 0, "")
	cmdline, _ := os.ReadFile("/proc/cmdline")
	for _, dev := range []string{"/dev/ttyS0", "/dev/console"} {
		f, err := os.OpenFile(dev, os.O_WRONLY, 0)
		if err != nil {
			continue
		}
		fmt.Fprintf(f, "\nIRONWORK-TEST-RAMDISK-BOOTED cmdline=%s\n", strings.TrimSpace(string(cmdline)))
		f.Close()
		break
	}
	syscall.Sync()
	time.Sleep(200 * time.Millisecond)
	_ = syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF)
	select {}
}
