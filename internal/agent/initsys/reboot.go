package initsys

import (
	"time"

	"golang.org/x/sys/unix"
)

// Fatal is the end of PID 1 on an unrecoverable error: it prints the error on the console,
// waits delay so that the message can be read (or a serial log captured), syncs and reboots.
// It never returns; if the reboot itself fails it prints that and sleeps forever, because
// PID 1 exiting would panic the kernel and hide the message.
func Fatal(c *Console, err error, delay time.Duration) {
	c.Printf("FATAL: %v", err)
	c.Printf("rebooting in %s", delay)
	time.Sleep(delay)
	unix.Sync()
	if rerr := unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART); rerr != nil {
		c.Printf("reboot: %v; halting here", rerr)
	}
	for {
		time.Sleep(time.Hour)
	}
}

// PowerOff syncs the filesystems and powers the machine off. It returns only on failure.
func PowerOff() error {
	unix.Sync()
	return unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
}

// IsPID1 reports whether this process is the system's init.
func IsPID1() bool { return unix.Getpid() == 1 }
