package initsys

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// leaseHelperEnv makes the test binary the agent's network code inside a namespace: it runs
// ConfigureNetwork and logs, as JSON on stdout, until it is killed or a minute passes.
// Its value "v6" runs it as for an API at an IPv6 literal, writing DNS to resolvHelperEnv's file;
// "v4" as for an API at an IPv4 literal (the lab's ipa-api-url).
const (
	leaseHelperEnv  = "IRONWORK_TEST_LEASE_HELPER"
	resolvHelperEnv = "IRONWORK_TEST_LEASE_RESOLV"
)

func TestMain(m *testing.M) {
	if name := os.Getenv(linkHelperEnv); name != "" {
		linkHelper(name)
		return
	}
	if os.Getenv(leaseHelperEnv) != "" {
		leaseHelper()
		return
	}
	os.Exit(m.Run())
}

func leaseHelper() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	cfg := NetworkConfig{NICWait: 5 * time.Second, LinkWait: 5 * time.Second, DHCPWait: 20 * time.Second,
		LinkPoll: 100 * time.Millisecond, MinRetry: time.Second}
	switch os.Getenv(leaseHelperEnv) {
	case "v6":
		cfg.Need, cfg.ResolvConf = FamilyIPv6, os.Getenv(resolvHelperEnv)
	case "v4":
		cfg.Need = FamilyIPv4
	}
	began := time.Now()
	leases, err := ConfigureNetwork(ctx, log, cfg)
	if err != nil {
		log.Error("configure network", logKeyError, err)
		os.Exit(1)
	}
	for _, l := range leases {
		log.Info("network configured", "source", l.Source, logKeyAddr, l.Addr.String(), "took", time.Since(began).Round(time.Millisecond).String())
	}
	<-ctx.Done()
}

var nsSeq atomic.Int32 // test-only: unique namespace names within this process

func cmdOut(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func netns(t *testing.T, role string) string {
	t.Helper()
	name := fmt.Sprintf("iwlease-%d-%d-%s", os.Getpid(), nsSeq.Add(1), role)
	cmdOut(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	cmdOut(t, "ip", "-n", name, "link", "set", "lo", "up")
	return name
}

// logLine is one line of the helper's JSON log.
type logLine struct {
	Msg    string `json:"msg"`
	Addr   string `json:"addr"`
	Phase  string `json:"phase"`
	After  string `json:"after"`
	Took   string `json:"took"`
	Error  string `json:"error"`
	Source string `json:"source"`
	NIC    string `json:"nic"`
}

// TestLeaseKeptAcrossRenewAndLinkFlap: in a namespace of its own, the agent's network code
// gets a lease from dnsmasq over a veth pair, renews it at T1 (2 s here), and gets a new
// lease after its link goes down and up.
func TestLeaseKeptAcrossRenewAndLinkFlap(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make network namespaces")
	}
	for _, b := range []string{"ip", "dnsmasq"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("needs %s", b)
		}
	}
	srv, cli := netns(t, "srv"), netns(t, "cli")
	cmdOut(t, "ip", "link", "add", "lks0", "netns", srv, "type", "veth", "peer", "name", "lkc0", "netns", cli)
	cmdOut(t, "ip", "-n", srv, "addr", "add", "10.79.0.1/24", "dev", "lks0")
	cmdOut(t, "ip", "-n", srv, "link", "set", "lks0", "up")
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dnsmasq := exec.CommandContext(ctx, "ip", "netns", "exec", srv, "dnsmasq", "--no-daemon", "--conf-file=/dev/null",
		"--port=0", "--interface=lks0", "--bind-interfaces", "--dhcp-range=10.79.0.50,10.79.0.60,255.255.255.0,2m",
		"--dhcp-option=58,2", "--dhcp-option=59,3", "--dhcp-leasefile="+filepath.Join(dir, "leases"),
		"--pid-file="+filepath.Join(dir, "pid"), "--no-ping", "--log-dhcp", "--log-facility=-")
	dnsmasq.Stdout, dnsmasq.Stderr = io.Discard, io.Discard
	if err := dnsmasq.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { dnsmasq.Process.Kill(); dnsmasq.Wait() }()

	out, began := startLeaseHelper(t, ctx, cli, leaseHelperEnv+"=1")
	lines := make(chan logLine, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var l logLine
			if json.Unmarshal(sc.Bytes(), &l) == nil {
				lines <- l
			}
		}
	}()
	// await reads the helper's log until want matches; every line is logged.
	await := func(what string, want func(logLine) bool) logLine {
		t.Helper()
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("the helper ended before %s", what)
				}
				t.Logf("%6.2fs %s addr=%s phase=%s after=%s took=%s %s", time.Since(began).Seconds(), l.Msg, l.Addr, l.Phase, l.After, l.Took, l.Error)
				if l.Msg == "configure network" {
					t.Fatalf("the helper failed: %s", l.Error)
				}
				if want(l) {
					return l
				}
			case <-ctx.Done():
				t.Fatalf("no %s within the test's bound", what)
			}
		}
	}
	first := await("first lease", func(l logLine) bool { return l.Msg == "dhcp lease" && l.After == "" })
	if !strings.HasPrefix(first.Addr, "10.79.0.") {
		t.Fatalf("lease address %q is not from the server's range", first.Addr)
	}
	if got := cmdOut(t, "ip", "-n", cli, "-4", "-o", "addr", "show", "dev", "lkc0"); !strings.Contains(got, first.Addr) {
		t.Fatalf("the NIC does not carry %s:\n%s", first.Addr, got)
	}
	t.Logf("first lease %s after %s", first.Addr, first.Took)
	renewed := await("renewal", func(l logLine) bool { return l.Msg == "dhcp lease extended" })
	if renewed.Phase != "renewing" || renewed.Addr != first.Addr {
		t.Fatalf("extended in phase %q with %s; want renewing with %s", renewed.Phase, renewed.Addr, first.Addr)
	}
	flapAt := time.Now()
	cmdOut(t, "ip", "-n", srv, "link", "set", "lks0", "down") // the switch port goes down
	await("link down", func(l logLine) bool { return l.Msg == "link down" })
	cmdOut(t, "ip", "-n", srv, "link", "set", "lks0", "up")
	again := await("lease after the flap", func(l logLine) bool { return l.Msg == "dhcp lease" && l.After == "link flap" })
	t.Logf("new lease %s %s after the link went down", again.Addr, time.Since(flapAt).Round(time.Millisecond))
	if got := cmdOut(t, "ip", "-n", cli, "-4", "-o", "addr", "show", "dev", "lkc0"); !strings.Contains(got, again.Addr) {
		t.Fatalf("the NIC does not carry %s after the flap:\n%s", again.Addr, got)
	}
}

// TestIPv4BringUpIgnoresMemberlessBond: the ramdisk loads the bonding module, which makes a
// bond0 with no members and so no carrier (a kernel without bonding gets a portless bridge). The IPv4 bring-up (an API at an IPv4 literal, as in
// the lab) takes only the veth for a NIC and returns with its lease; it used to take bond0 too
// and wait LinkWait (15 s in the ramdisk, 5 s here) for a link that never comes.
func TestIPv4BringUpIgnoresMemberlessBond(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make network namespaces")
	}
	for _, b := range []string{"ip", "dnsmasq"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("needs %s", b)
		}
	}
	srv, cli := netns(t, "srv4"), netns(t, "cli4")
	kind := "bond" // a bridge without ports has no carrier either, where bonding is not built
	if !kernelHas(t, cli, kind) {
		kind = "bridge"
	}
	cmdOut(t, "ip", "-n", cli, "link", "add", kind+"0", "type", kind)
	cmdOut(t, "ip", "link", "add", "lbs0", "netns", srv, "type", "veth", "peer", "name", "lbc0", "netns", cli)
	cmdOut(t, "ip", "-n", srv, "addr", "add", "10.78.0.1/24", "dev", "lbs0")
	cmdOut(t, "ip", "-n", srv, "link", "set", "lbs0", "up")
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dnsmasq := exec.CommandContext(ctx, "ip", "netns", "exec", srv, "dnsmasq", "--no-daemon", "--conf-file=/dev/null",
		"--port=0", "--interface=lbs0", "--bind-interfaces", "--dhcp-range=10.78.0.50,10.78.0.60,255.255.255.0,2m",
		"--dhcp-leasefile="+filepath.Join(dir, "leases"), "--pid-file="+filepath.Join(dir, "pid"), "--no-ping",
		"--log-facility=-")
	dnsmasq.Stdout, dnsmasq.Stderr = io.Discard, io.Discard
	if err := dnsmasq.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { dnsmasq.Process.Kill(); dnsmasq.Wait() }()
	out, began := startLeaseHelper(t, ctx, cli, leaseHelperEnv+"=v4")
	var got logLine
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		var l logLine
		if json.Unmarshal(sc.Bytes(), &l) != nil {
			continue
		}
		t.Logf("%6.2fs %s nic=%s addr=%s took=%s %s", time.Since(began).Seconds(), l.Msg, l.NIC, l.Addr, l.Took, l.Error)
		if l.Msg == "network interface" && l.NIC != "lbc0" {
			t.Errorf("%s taken for a NIC", l.NIC)
		}
		if l.Msg == "configure network" {
			t.Fatalf("the helper failed: %s", l.Error)
		}
		if l.Msg == "network configured" {
			got = l
			break
		}
	}
	if got.Msg == "" {
		t.Fatal("the helper ended without a lease")
	}
	if !strings.HasPrefix(got.Addr, "10.78.0.") || got.Source != SourceDHCPv4 {
		t.Fatalf("configured %s from %s, want a DHCPv4 lease in 10.78.0.50-60", got.Addr, got.Source)
	}
	t.Logf("lease %s: ConfigureNetwork returned after %s beside a memberless %s (load %s)", got.Addr, got.Took, kind, loadavg())
}

// startLeaseHelper runs this test binary as the lease helper in namespace cli with env added
// (it runs ConfigureNetwork and prints its log as JSON lines), and returns its output and the
// time it started; the helper is killed when the test ends.
func startLeaseHelper(t *testing.T, ctx context.Context, cli string, env ...string) (io.Reader, time.Time) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	helper := exec.CommandContext(ctx, "ip", "netns", "exec", cli, self, "-test.run=^$")
	helper.Env = append(os.Environ(), env...)
	helper.Stderr = os.Stderr
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { helper.Process.Kill(); helper.Wait() })
	return out, began
}
