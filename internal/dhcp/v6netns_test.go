package dhcp

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startServer6 makes and runs a Server6 inside ns until the test ends.
func startServer6(t *testing.T, ns string, cfg Config6, nodes Nodes, leases Leases6) *Server6 {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan *Server6, 1)
	done := make(chan error, 1)
	go func() {
		done <- inNS(ns, func() error {
			s, err := New6(cfg, nodes, leases, testLogger(t))
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
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("serve did not return after cancel")
		}
	})
	time.Sleep(100 * time.Millisecond)
	return s
}

// dhclient6 runs ISC dhclient -6 (args added) in ns on ifname in the
// foreground until its lease file or what it passes its script holds want
// (at most 30 s), then stops it and returns both.
func dhclient6(t *testing.T, ns, ifname, conf, want string, args ...string) string {
	t.Helper()
	waitLinkLocal(t, ns, ifname)
	dir := t.TempDir()
	lf, cf, sf, env := filepath.Join(dir, "leases"), filepath.Join(dir, "dhclient.conf"), filepath.Join(dir, "script"), filepath.Join(dir, "env")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sf, []byte("#!/bin/sh\nenv >> "+env+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	argv := append([]string{"netns", "exec", ns, "dhclient", "-6", "-d", "-v", "-cf", cf, "-lf", lf,
		"-pf", filepath.Join(dir, "pid"), "-sf", sf}, args...)
	cmd := exec.CommandContext(ctx, "ip", append(argv, ifname)...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	read := func() string {
		b, _ := os.ReadFile(lf)
		e, _ := os.ReadFile(env)
		return string(b) + string(e)
	}
	for range 300 {
		if got := read(); strings.Contains(got, want) {
			return got
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("dhclient got no lease with %q in 30 s:\n%s\nlease file and script environment:\n%s", want, out.String(), read())
	return ""
}

func TestDHCPv6WithDhclient(t *testing.T) {
	requireRoot(t, "dhclient")
	// UEFI HTTP boot's vendor class (enterprise 343, "HTTPClient"), and the boot file URL asked for.
	const conf = "timeout 30;\noption dhcp6.vclass code 16 = {integer 32, integer 16, string};\n" +
		"option dhcp6.boot-url code 59 = string;\nalso request dhcp6.boot-url;\nsend dhcp6.vclass 343 10 \"HTTPClient\";\n"
	t.Run("stateful", func(t *testing.T) {
		tn := newTestNet(t)
		mac := macOf(t, tn.clientNS, tn.clientIf)
		leases := &MemoryLeases6{}
		prefix := netip.MustParsePrefix(fmt.Sprintf("fd77:%d::/64", tn.n))
		start := time.Now()
		startServer6(t, tn.serverNS, Config6{Subnet6: Subnet6{Mode: Mode6Stateful, Prefix: prefix,
			RangeStart: netip.MustParseAddr(fmt.Sprintf("fd77:%d::100", tn.n)), RangeEnd: netip.MustParseAddr(fmt.Sprintf("fd77:%d::1ff", tn.n)),
			DNS: []netip.Addr{netip.MustParseAddr(fmt.Sprintf("fd77:%d::53", tn.n))}},
			Interface: tn.serverIf, HTTPBootURL: fmt.Sprintf("http://[fd77:%d::1]:8080", tn.n)},
			mapNodes{mac.String(): {Known: true, NetBoot: true}}, leases)
		lf := dhclient6(t, tn.clientNS, tn.clientIf, conf, "iaaddr")
		t.Logf("dhclient -6 got its lease in %v", time.Since(start))
		ls, _ := leases.Leases6(context.Background())
		if len(ls) != 1 || ls[0].MAC.String() != mac.String() || !ls[0].Active(time.Now()) {
			t.Fatalf("server leases: %+v", ls)
		}
		for _, want := range []string{
			"iaaddr " + ls[0].IP.String(),
			fmt.Sprintf("option dhcp6.name-servers fd77:%d::53", tn.n),
			fmt.Sprintf(`http://[fd77:%d::1]:8080/ipxe.efi`, tn.n),
		} {
			if !strings.Contains(lf, want) {
				t.Errorf("lease file lacks %q:\n%s", want, lf)
			}
		}
	})
	t.Run("stateless", func(t *testing.T) {
		tn := newTestNet(t)
		mac := macOf(t, tn.clientNS, tn.clientIf)
		startServer6(t, tn.serverNS, Config6{Subnet6: Subnet6{Mode: Mode6Stateless, Prefix: netip.MustParsePrefix(fmt.Sprintf("fd77:%d::/64", tn.n)),
			DNS: []netip.Addr{netip.MustParseAddr(fmt.Sprintf("fd77:%d::53", tn.n))}},
			Interface: tn.serverIf, HTTPBootURL: fmt.Sprintf("http://[fd77:%d::1]:8080", tn.n)},
			mapNodes{mac.String(): {Known: true}}, nil)
		lf := dhclient6(t, tn.clientNS, tn.clientIf, conf, "new_dhcp6_name_servers", "-S")
		if strings.Contains(lf, "new_ip6_address") || !strings.Contains(lf, fmt.Sprintf("new_dhcp6_name_servers=fd77:%d::53", tn.n)) {
			t.Errorf("stateless lease file:\n%s", lf)
		}
	})
}

func macOf(t *testing.T, ns, ifname string) net.HardwareAddr {
	t.Helper()
	var mac net.HardwareAddr
	if err := inNS(ns, func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		mac = ifi.HardwareAddr
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return mac
}
