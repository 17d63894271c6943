package main

import (
	"log/slog"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/ironwork/ironwork/internal/agent/initsys"
)

// busybox is the shell environment of a rescue ramdisk (`ironwork ramdisk build --rescue`).
const busybox = "/bin/busybox"

// runRescue is PID 1 after a rescue: the agent's API and heartbeats have stopped, the
// network stays up (its DHCP leases are still kept), and a getty on the kernel's console
// (console= on the command line, else ttyS0) lets the rescue user log in. The getty is
// started again after each logout; every orphan is reaped. It never returns.
func runRescue(console *initsys.Console, log *slog.Logger) {
	tty := rescueTTY()
	if _, err := os.Stat(busybox); err != nil {
		console.Printf("rescue: this ramdisk has no shell (%s: build it with 'ironwork ramdisk build --rescue'); nobody can log in", busybox)
		for {
			reapAll()
		}
	}
	for _, d := range []string{"/sbin", "/usr/bin", "/usr/sbin", "/root", "/mnt"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			log.Warn("rescue: create directory", "dir", d, logKeyError, err)
		}
	}
	// The applets' links (sh, mount, ls, login...) are made here so the image carries one file.
	if err := runWait(busybox, "--install", "-s"); err != nil {
		log.Warn("rescue: install the busybox links", logKeyError, err)
	}
	startSSH(console, log)
	console.Printf("rescue: log in as %q on %s", "rescue", tty)
	for {
		started := time.Now()
		pid, err := syscall.ForkExec(busybox, []string{"getty", "-L", "115200", tty, "vt100"}, &syscall.ProcAttr{
			Env: []string{"PATH=/bin:/sbin:/usr/bin:/usr/sbin", "TERM=vt100", "HOME=/root"},
			Sys: &syscall.SysProcAttr{Setsid: true},
		})
		if err != nil {
			console.Printf("rescue: start getty on %s: %v", tty, err)
			time.Sleep(10 * time.Second)
			continue
		}
		waitFor(pid)
		if time.Since(started) < 2*time.Second {
			time.Sleep(5 * time.Second) // a getty that cannot open its terminal must not spin
		}
	}
}

// rescueTTY is the last console= of the kernel command line without its options ("ttyS0"
// from "console=ttyS0,115200n8"), or ttyS0.
func rescueTTY() string {
	b, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return "ttyS0"
	}
	v := initsys.ParseCmdline(string(b))["console"]
	v, _, _ = strings.Cut(v, ",")
	if v == "" || strings.ContainsAny(v, "/.") {
		return "ttyS0"
	}
	return v
}

// runWait runs a program to its end, reaping whatever else ends meanwhile.
func runWait(bin string, args ...string) error {
	pid, err := syscall.ForkExec(bin, append([]string{bin}, args...), &syscall.ProcAttr{
		Env:   []string{"PATH=/bin:/sbin:/usr/bin:/usr/sbin"},
		Files: []uintptr{0, 1, 2},
	})
	if err != nil {
		return err
	}
	waitFor(pid)
	return nil
}

// waitFor reaps children until pid has ended.
func waitFor(pid int) {
	for {
		var ws syscall.WaitStatus
		got, err := syscall.Wait4(-1, &ws, 0, nil)
		if got == pid || (err != nil && err != syscall.EINTR) {
			return
		}
	}
}

// reapAll reaps children until there are none, then waits a little.
func reapAll() {
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(-1, &ws, 0, nil); err != nil {
		time.Sleep(time.Minute)
	}
}

// dropbear is the SSH server of a rescue ramdisk built with it.
const dropbear = "/usr/sbin/dropbear"

// startSSH starts dropbear on port 22 when the ramdisk has it: password logins for the
// rescue user (its shell must be listed in /etc/shells), host keys made at the first
// connection. It forks into the background; PID 1 reaps it.
func startSSH(console *initsys.Console, log *slog.Logger) {
	if _, err := os.Stat(dropbear); err != nil {
		console.Printf("rescue: no SSH in this ramdisk (built without dropbear)")
		return
	}
	if err := os.WriteFile("/etc/shells", []byte("/bin/sh\n"), 0o644); err != nil {
		log.Warn("rescue: write /etc/shells", logKeyError, err)
	}
	if err := os.MkdirAll("/etc/dropbear", 0o700); err != nil {
		log.Warn("rescue: create /etc/dropbear", logKeyError, err)
	}
	if err := runWait(dropbear, "-R", "-p", "22"); err != nil {
		console.Printf("rescue: start dropbear: %v", err)
		return
	}
	console.Printf("rescue: SSH (dropbear) on port 22")
}
