package initsys

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestIPv6BringUpInANamespace: the agent's network code, run as for an API at an IPv6
// literal, in a namespace of its own behind a veth whose peer runs dnsmasq with IPv6 only
// (router advertisements and DHCPv6), gets an address in each mode the provisioning network
// may run: stateful (DHCPv6 lease from the range, a /128, the on-link /64 from the RA, DNS
// from option 23 in resolv.conf) and stateless (SLAAC address in the prefix); and the kernel picks
// that address to reach the server's. No DHCPv4 server runs: the bring-up must not need one.
func TestIPv6BringUpInANamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make network namespaces")
	}
	for _, b := range []string{"ip", "dnsmasq"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("needs %s", b)
		}
	}
	for _, tc := range []struct {
		mode, dhcpRange, source string
	}{
		{"stateful", "fd79::100,fd79::1ff,64,2m", SourceDHCPv6},
		{"stateless", "fd79::,ra-stateless,64,2m", SourceSLAAC},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			srv, cli := netns(t, "srv6"), netns(t, "cli6")
			// A bond without members, as loading the bonding module makes: not a NIC to wait for.
			bond := kernelHas(t, cli, "bond")
			if bond {
				cmdOut(t, "ip", "-n", cli, "link", "add", "bond0", "type", "bond")
			}
			cmdOut(t, "ip", "link", "add", "l6s0", "netns", srv, "type", "veth", "peer", "name", "l6c0", "netns", cli)
			cmdOut(t, "ip", "-n", srv, "addr", "add", "fd79::1/64", "dev", "l6s0", "nodad")
			cmdOut(t, "ip", "-n", srv, "link", "set", "l6s0", "up")
			dir := t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			dnsmasq := exec.CommandContext(ctx, "ip", "netns", "exec", srv, "dnsmasq", "--no-daemon", "--conf-file=/dev/null",
				"--port=0", "--interface=l6s0", "--bind-interfaces", "--enable-ra", "--ra-param=l6s0,3,0",
				"--dhcp-range="+tc.dhcpRange, "--dhcp-option=option6:dns-server,[fd79::53]",
				"--dhcp-leasefile="+filepath.Join(dir, "leases"), "--pid-file="+filepath.Join(dir, "pid"),
				"--log-dhcp", "--log-facility=-")
			dnsmasq.Stdout, dnsmasq.Stderr = io.Discard, io.Discard
			if err := dnsmasq.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { dnsmasq.Process.Kill(); dnsmasq.Wait() }()

			resolv := filepath.Join(dir, "resolv.conf")
			out, began := startLeaseHelper(t, ctx, cli, leaseHelperEnv+"=v6", resolvHelperEnv+"="+resolv)
			var got logLine
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				var l logLine
				if json.Unmarshal(sc.Bytes(), &l) != nil {
					continue
				}
				t.Logf("%6.2fs %s source=%s addr=%s took=%s %s", time.Since(began).Seconds(), l.Msg, l.Source, l.Addr, l.Took, l.Error)
				if l.Msg == "network interface" && l.NIC != "l6c0" {
					t.Fatalf("%s taken for a NIC", l.NIC)
				}
				if l.Msg == "configure network" {
					t.Fatalf("the helper failed: %s", l.Error)
				}
				if l.Msg == "network configured" && l.Source != SourceDHCPv4 {
					got = l
					break
				}
			}
			if got.Msg == "" {
				t.Fatal("the helper ended without an IPv6 address")
			}
			t.Logf("%s: %s address %s after %s (load %s; a memberless bond present: %v)", tc.mode, got.Source, got.Addr, got.Took, loadavg(), bond)
			if got.Source != tc.source {
				t.Fatalf("address from %s, want %s", got.Source, tc.source)
			}
			ip, ipn, err := net.ParseCIDR(got.Addr)
			if err != nil || !(&net.IPNet{IP: net.ParseIP("fd79::"), Mask: net.CIDRMask(64, 128)}).Contains(ip) {
				t.Fatalf("address %q is not in fd79::/64 (%v)", got.Addr, err)
			}
			addrs := cmdOut(t, "ip", "-n", cli, "-6", "-o", "addr", "show", "dev", "l6c0")
			if !strings.Contains(addrs, ip.String()+"/") {
				t.Fatalf("the NIC does not carry %s:\n%s", ip, addrs)
			}
			if tc.source == SourceDHCPv6 {
				n := ip.To16()
				if n[14] != 1 || ones(ipn) != 128 { // fd79::100-1ff
					t.Fatalf("leased %s, want a /128 in fd79::100-fd79::1ff", got.Addr)
				}
				if routes := cmdOut(t, "ip", "-n", cli, "-6", "route", "show", "dev", "l6c0"); !strings.Contains(routes, "fd79::/64") {
					t.Fatalf("no on-link route for fd79::/64 from the RA:\n%s", routes)
				}
				if b, err := os.ReadFile(resolv); err != nil || !strings.Contains(string(b), "nameserver fd79::53") {
					t.Fatalf("resolv.conf %q (%v), want nameserver fd79::53", b, err)
				}
			}
			// the kernel picks the address as the source towards the server (DAD done, on-link)
			if r := cmdOut(t, "ip", "-n", cli, "-6", "route", "get", "fd79::1"); !strings.Contains(r, "src "+ip.String()) || !strings.Contains(r, "dev l6c0") {
				t.Fatalf("route to the server does not use %s:\n%s", ip, r)
			}
		})
	}
}

func ones(n *net.IPNet) int { o, _ := n.Mask.Size(); return o }

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return strings.TrimSpace(string(b))
}
