package dhcp

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Test network namespaces: every test makes its own, named after the pid
// and a counter, and deletes them (and so their links) in t.Cleanup.

var nsSeq atomic.Int32 // test-only: unique names within this process

func requireRoot(t *testing.T, bins ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to make network namespaces")
	}
	for _, b := range append([]string{"ip"}, bins...) {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("needs %s (%v)", b, err)
		}
	}
}

// run runs a command (bounded by 30 s) and fails the test on error.
func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := runErr(args...)
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func runErr(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	return string(out), err
}

// addNS makes a network namespace with loopback up, deleted at cleanup.
func addNS(t *testing.T, role string) string {
	t.Helper()
	name := fmt.Sprintf("iwdhcp-%d-%d-%s", os.Getpid(), nsSeq.Add(1), role)
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() {
		if out, err := runErr("ip", "netns", "del", name); err != nil {
			t.Logf("delete netns %s: %v %s", name, err, out)
		}
	})
	run(t, "ip", "-n", name, "link", "set", "lo", "up")
	return name
}

// vethPair links namespace a (interface an) to b (bn), both up, IPv6 DAD
// off so link-local addresses are usable at once.
func vethPair(t *testing.T, a, an, b, bn string) {
	t.Helper()
	run(t, "ip", "link", "add", an, "netns", a, "type", "veth", "peer", "name", bn, "netns", b)
	for _, x := range [][2]string{{a, an}, {b, bn}} {
		run(t, "ip", "netns", "exec", x[0], "sysctl", "-qw", "net.ipv6.conf."+x[1]+".accept_dad=0")
		run(t, "ip", "-n", x[0], "link", "set", x[1], "up")
	}
}

// testNet is a server namespace and a client namespace joined by a veth
// pair; the server end has 10.77.<n>.1/24 and fd77:<n>::1/64.
type testNet struct {
	serverNS, clientNS string
	serverIf, clientIf string
	n                  int
}

func (tn *testNet) ip(host int) net.IP { return net.IPv4(10, 77, byte(tn.n), byte(host)).To4() }

func newTestNet(t *testing.T) *testNet {
	t.Helper()
	tn := &testNet{serverNS: addNS(t, "srv"), clientNS: addNS(t, "cli"), serverIf: "dhs0", clientIf: "dhc0"}
	tn.n = int(nsSeq.Load()%200) + 1
	vethPair(t, tn.serverNS, tn.serverIf, tn.clientNS, tn.clientIf)
	run(t, "ip", "-n", tn.serverNS, "addr", "add", tn.ip(1).String()+"/24", "dev", tn.serverIf)
	run(t, "ip", "-n", tn.serverNS, "addr", "add", fmt.Sprintf("fd77:%d::1/64", tn.n), "dev", tn.serverIf, "nodad")
	return tn
}

// inNS runs f on a goroutine whose OS thread is moved into namespace ns and
// returns what f returns. The thread is never unlocked, so the Go runtime
// discards it when the goroutine ends instead of reusing it elsewhere.
func inNS(ns string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		fd, err := unix.Open("/var/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("open netns %s: %w", ns, err)
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// startServer makes and runs a Server inside ns until the test ends (or the
// returned stop is called, which waits for Serve to return).
func startServer(t *testing.T, ns string, cfg Config, nodes Nodes, leases Leases) (*Server, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan *Server, 1)
	done := make(chan error, 1)
	go func() {
		done <- inNS(ns, func() error {
			s, err := New(cfg, nodes, leases, testLogger(t))
			if err != nil {
				ready <- nil
				return err
			}
			ready <- s
			return s.Serve(ctx)
		})
	}()
	s := <-ready
	if s == nil {
		cancel()
		t.Fatalf("new server: %v", <-done)
	}
	var stopped atomic.Bool
	stop := func() {
		if stopped.Swap(true) {
			return
		}
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("serve did not return after cancel")
		}
	}
	t.Cleanup(stop)
	// Serve opens its sockets right after New; give it a moment.
	time.Sleep(100 * time.Millisecond)
	return s, stop
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// setMAC gives interface ifname in ns the address mac.
func setMAC(t *testing.T, ns, ifname string, mac net.HardwareAddr) {
	t.Helper()
	run(t, "ip", "-n", ns, "link", "set", ifname, "down")
	run(t, "ip", "-n", ns, "link", "set", ifname, "address", mac.String())
	run(t, "ip", "-n", ns, "link", "set", ifname, "up")
}

// parseEnv parses KEY=VALUE lines.
func parseEnv(b []byte) map[string]string {
	m := make(map[string]string)
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			m[k] = strings.Trim(v, "'")
		}
	}
	return m
}
