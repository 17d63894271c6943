package lab

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Down stops every process of the lab in dir, removes its namespace (and with it the bridge
// and taps), the racks' router namespace (its bridges, taps and dhcrelay) and the lab directory. It works from the state file alone, also when Up failed
// half-way, and does nothing for a lab that is already down.
func Down(dir string, log io.Writer) error {
	if log == nil {
		log = io.Discard
	}
	st, err := Load(dir)
	if err != nil {
		if _, statErr := os.Stat(dir); os.IsNotExist(statErr) {
			return nil // nothing there
		}
		if _, statErr := os.Stat(dir + "/" + StateFile); os.IsNotExist(statErr) {
			return nil // a directory that holds no lab: left alone
		}
		return err
	}
	var errs []error
	// The server first (it must not power machines back on), then the BMCs (which power
	// their machines off), then whatever still runs inside the namespace.
	for i := len(st.Procs) - 1; i >= 0; i-- {
		p := st.Procs[i]
		if p.PID > 0 && ours(p.PID) {
			fmt.Fprintf(log, "stopping %s (pid %d)\n", p.Name, p.PID)
			stop(p.PID)
		}
	}
	// The racks' router namespace (its bridges, taps and the uplink's veth go with it), then
	// the lab's.
	for _, ns := range []string{st.RouterNetns, st.Netns} {
		if ns == "" {
			continue
		}
		if out, err := exec.Command("ip", "netns", "pids", ns).Output(); err == nil {
			for _, f := range strings.Fields(string(out)) {
				if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
		if _, err := os.Stat("/run/netns/" + ns); err == nil {
			fmt.Fprintf(log, "removing network namespace %s\n", ns)
			if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("ip netns del %s: %v: %s", ns, err, out))
			}
		}
	}
	for _, f := range st.Files {
		if err := os.RemoveAll(f); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		if err := os.RemoveAll(st.Dir); err != nil {
			errs = append(errs, fmt.Errorf("remove the lab directory: %w", err))
		}
	}
	return errors.Join(errs...)
}

// ours reports whether pid still runs a program the lab starts (not a pid reused since).
func ours(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	cmd := string(b)
	return strings.Contains(cmd, "ironwork") || strings.Contains(cmd, "ipmi_sim") || strings.Contains(cmd, "qemu") ||
		strings.Contains(cmd, "busybox") || strings.Contains(cmd, "dhcrelay")
}

// alive reports whether pid runs (and is not a zombie).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return !strings.HasPrefix(rest, "Z")
}

// stop sends SIGTERM to pid's process group, and SIGKILL after 10 s.
func stop(pid int) {
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	for i := 0; i < 100 && alive(pid); i++ {
		time.Sleep(100 * time.Millisecond)
	}
	if alive(pid) {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		for i := 0; i < 50 && alive(pid); i++ {
			time.Sleep(100 * time.Millisecond)
		}
	}
}
