// Package netnstest makes throw-away network namespaces for tests: a namespace with a
// bridge that test hosts (QEMU taps, veth peers) join, addressed from a private range that
// exists only inside it. Everything it makes is removed when the test ends, also when the
// test fails. It needs root and iproute2; without them tests skip with the reason.
package netnstest

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// Need skips the test unless it runs as root with iproute2.
func Need(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2 (ip) to create network namespaces")
	}
}

// IP runs `ip args...` and fails the test on error.
func IP(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// New creates a namespace named prefix-<pid> with loopback up and removes it at the end of
// the test, with every link and process still inside it.
func New(t testing.TB, prefix string) string {
	t.Helper()
	Need(t)
	name := fmt.Sprintf("%s-%d", prefix, os.Getpid())
	_ = exec.Command("ip", "netns", "del", name).Run() // left over from a killed run
	IP(t, "netns", "add", name)
	t.Cleanup(func() {
		// Kill what still runs inside, then delete the namespace (its links go with it).
		if out, err := exec.Command("ip", "netns", "pids", name).Output(); err == nil {
			for _, pid := range strings.Fields(string(out)) {
				if pid == strconv.Itoa(os.Getpid()) {
					continue // a thread of this test may still sit in it
				}
				_ = exec.Command("kill", "-9", pid).Run()
			}
		}
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("delete network namespace %s: %v: %s", name, err, out)
		}
	})
	IP(t, "-n", name, "link", "set", "lo", "up")
	return name
}

// Bridge adds a bridge to ns with the given IPv4 and IPv6 addresses (CIDR; either may be
// empty) and brings it up.
func Bridge(t testing.TB, ns, name, v4, v6 string) {
	t.Helper()
	IP(t, "-n", ns, "link", "add", name, "type", "bridge")
	// No STP forwarding delay: hosts that join send at once.
	IP(t, "-n", ns, "link", "set", name, "type", "bridge", "forward_delay", "0")
	if v4 != "" {
		IP(t, "-n", ns, "addr", "add", v4, "dev", name)
	}
	if v6 != "" {
		IP(t, "-n", ns, "addr", "add", v6, "dev", name, "nodad")
	}
	IP(t, "-n", ns, "link", "set", name, "up")
}

// Tap adds a tap device to ns attached to bridge, for a QEMU -netdev tap.
func Tap(t testing.TB, ns, name, bridge string) {
	t.Helper()
	IP(t, "-n", ns, "tuntap", "add", name, "mode", "tap")
	IP(t, "-n", ns, "link", "set", name, "master", bridge)
	IP(t, "-n", ns, "link", "set", name, "up")
}
