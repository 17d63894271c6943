package dhcp

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// startRA runs a RouterAdvertiser in ns until the test ends.
func startRA(t *testing.T, ns string, cfg RAConfig) {
	t.Helper()
	ra, err := NewRouterAdvertiser(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- inNS(ns, func() error { return ra.Serve(ctx) }) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("router advertiser: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("router advertiser did not stop")
		}
	})
}

// rdisc6 solicits once (3 tries, 1 s apart) and returns its report with
// runs of white space made one space.
func rdisc6(t *testing.T, ns, ifname string) string {
	t.Helper()
	waitLinkLocal(t, ns, ifname)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "rdisc6", "-1", "-r", "3", "-w", "1000", ifname).CombinedOutput()
	if err != nil {
		t.Fatalf("rdisc6: %v\n%s", err, out)
	}
	return strings.Join(strings.Fields(string(out)), " ")
}

// waitLinkLocal waits (at most 5 s) until ifname in ns has a usable
// link-local address and so can send router solicitations.
func waitLinkLocal(t *testing.T, ns, ifname string) {
	t.Helper()
	for range 50 {
		out, _ := runErr("ip", "-n", ns, "-6", "addr", "show", "dev", ifname, "scope", "link")
		if strings.Contains(out, "fe80::") && !strings.Contains(out, "tentative") {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s in %s has no link-local address", ifname, ns)
}

func TestRouterAdvertisementsWithRdisc6(t *testing.T) {
	requireRoot(t, "rdisc6")
	t.Run("prefix", func(t *testing.T) {
		tn := newTestNet(t)
		startRA(t, tn.serverNS, RAConfig{Interface: tn.serverIf})
		out := rdisc6(t, tn.clientNS, tn.clientIf)
		for _, want := range []string{
			"Router lifetime : 0 (",
			fmt.Sprintf("Prefix : fd77:%d::/64 On-link : Yes Autonomous address conf.: Yes", tn.n),
		} {
			if !strings.Contains(out, want) {
				t.Errorf("rdisc6 output lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("stateful-flags", func(t *testing.T) {
		tn := newTestNet(t)
		startRA(t, tn.serverNS, RAConfig{Interface: tn.serverIf, Managed: true, NoAutonomous: true,
			Prefix: netip.MustParsePrefix(fmt.Sprintf("fd78:%d::/64", tn.n))})
		out := rdisc6(t, tn.clientNS, tn.clientIf)
		for _, want := range []string{
			"Stateful address conf. : Yes", "Stateful other conf. : Yes",
			fmt.Sprintf("Prefix : fd78:%d::/64 On-link : Yes Autonomous address conf.: No", tn.n),
		} {
			if !strings.Contains(out, want) {
				t.Errorf("rdisc6 output lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("stateless-flags", func(t *testing.T) {
		tn := newTestNet(t)
		startRA(t, tn.serverNS, RAConfig{Interface: tn.serverIf, Other: true})
		out := rdisc6(t, tn.clientNS, tn.clientIf)
		for _, want := range []string{
			"Stateful address conf. : No", "Stateful other conf. : Yes",
			fmt.Sprintf("Prefix : fd77:%d::/64 On-link : Yes Autonomous address conf.: Yes", tn.n),
		} {
			if !strings.Contains(out, want) {
				t.Errorf("rdisc6 output lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("no-prefix", func(t *testing.T) {
		tn := newTestNet(t)
		run(t, "ip", "-n", tn.serverNS, "addr", "del", fmt.Sprintf("fd77:%d::1/64", tn.n), "dev", tn.serverIf)
		startRA(t, tn.serverNS, RAConfig{Interface: tn.serverIf})
		out := rdisc6(t, tn.clientNS, tn.clientIf)
		if !strings.Contains(out, "Router lifetime : 0 (") {
			t.Errorf("no RA with router lifetime 0:\n%s", out)
		}
		if strings.Contains(out, "Prefix") {
			t.Errorf("RA carries a prefix though the interface has only a link-local address:\n%s", out)
		}
	})
	t.Run("periodic", func(t *testing.T) {
		tn := newTestNet(t)
		startRA(t, tn.serverNS, RAConfig{Interface: tn.serverIf, FastInterval: 300 * time.Millisecond, MinReplyGap: time.Hour})
		// MinReplyGap of an hour: solicitations after the first get no
		// direct answer, so the second rdisc6 can only see periodic RAs.
		rdisc6(t, tn.clientNS, tn.clientIf)
		out := rdisc6(t, tn.clientNS, tn.clientIf)
		if !strings.Contains(out, "Router lifetime") {
			t.Errorf("no periodic RA seen:\n%s", out)
		}
	})
}
