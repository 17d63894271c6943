package dhcp

import (
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ironwork/ironwork/internal/lockedbuf"
)

// TestRelayedRacksThroughDhcrelay serves two racks, each on its own subnet behind ISC's
// dhcrelay (which adds option 82 and strips it from the replies), and the server's own network:
// busybox udhcpc in each rack gets an address of its rack's range with the rack's mask and
// router, and its boot file, through the relay.
func TestRelayedRacksThroughDhcrelay(t *testing.T) {
	requireRoot(t, "busybox", "dhcrelay")
	n := int(nsSeq.Load()%200) + 1
	up := func(h int) net.IP { return net.IPv4(10, 71, byte(n), byte(h)).To4() }
	rackA := func(h int) net.IP { return net.IPv4(10, 72, byte(n), byte(h)).To4() }
	rackB := func(h int) net.IP { return net.IPv4(10, 73, byte(n), byte(h)).To4() }
	srv, relay, nsA, nsB := addNS(t, "srv"), addNS(t, "rly"), addNS(t, "rka"), addNS(t, "rkb")
	vethPair(t, srv, "up0", relay, "up1")
	vethPair(t, relay, "ra0", nsA, "ca0")
	vethPair(t, relay, "rb0", nsB, "cb0")
	run(t, "ip", "-n", srv, "addr", "add", up(1).String()+"/24", "dev", "up0")
	run(t, "ip", "-n", relay, "addr", "add", up(2).String()+"/24", "dev", "up1")
	run(t, "ip", "-n", relay, "addr", "add", rackA(1).String()+"/24", "dev", "ra0")
	run(t, "ip", "-n", relay, "addr", "add", rackB(1).String()+"/24", "dev", "rb0")
	run(t, "ip", "netns", "exec", relay, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	for _, rack := range []net.IP{rackA(0), rackB(0)} {
		run(t, "ip", "-n", srv, "route", "add", rack.String()+"/24", "via", up(2).String())
	}

	macA, macB := mustMAC("52:54:00:71:00:0a"), mustMAC("52:54:00:71:00:0b")
	nodes := mapNodes{macA.String(): {Known: true, NetBoot: true, Node: "a"}, macB.String(): {Known: true, NetBoot: true, Node: "b"}}
	_, netA, _ := net.ParseCIDR(rackA(0).String() + "/24")
	_, netB, _ := net.ParseCIDR(rackB(0).String() + "/24")
	cfg := Config{
		Mode: ModeFull, Interface: "up0", RangeStart: up(100), RangeEnd: up(110),
		HTTPBootURL: "http://" + up(1).String() + ":8080",
		Subnets: []Subnet{
			{Network: netA, RangeStart: rackA(50), RangeEnd: rackA(59)},
			{Network: netB, RangeStart: rackB(150), RangeEnd: rackB(159), Router: rackB(254), DNS: []net.IP{up(1)}, MTU: 1400},
		},
	}
	startServer(t, srv, cfg, nodes, NewMemoryLeases())

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var relayLog lockedbuf.Buffer
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", relay, "dhcrelay", "-4", "-d", "-a",
		"-pf", filepath.Join(t.TempDir(), "dhcrelay.pid"), "-id", "ra0", "-id", "rb0", "-iu", "up1", up(1).String())
	cmd.Stdout, cmd.Stderr = &relayLog, &relayLog
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dhcrelay: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("dhcrelay:\n%s", relayLog.String())
		}
	})
	time.Sleep(500 * time.Millisecond) // dhcrelay opens its sockets

	for _, tc := range []struct {
		ns, ifname     string
		mac            net.HardwareAddr
		args           []string
		first, last    net.IP
		router, bootfl string
		mtu            string
	}{
		{nsA, "ca0", macA, pxeBIOS, rackA(50), rackA(59), rackA(1).String(), "undionly.kpxe", ""},
		{nsB, "cb0", macB, pxeEFI, rackB(150), rackB(159), rackB(254).String(), "snponly.efi", "1400"},
	} {
		t.Run(tc.ifname, func(t *testing.T) {
			setMAC(t, tc.ns, tc.ifname, tc.mac)
			var env map[string]string
			var err error
			for try := 0; try < 3; try++ { // the relay may still be starting
				if env, err = udhcpc(t, tc.ns, tc.ifname, tc.args...); err == nil {
					break
				}
			}
			if err != nil {
				t.Fatalf("no lease through the relay: %v", err)
			}
			ip := net.ParseIP(env["ip"]).To4()
			if ip == nil || ipToU32(ip) < ipToU32(tc.first) || ipToU32(ip) > ipToU32(tc.last) {
				t.Errorf("ip %q, want one of %v..%v", env["ip"], tc.first, tc.last)
			}
			if env["subnet"] != "255.255.255.0" || env["router"] != tc.router {
				t.Errorf("subnet %q router %q, want 255.255.255.0 and %s", env["subnet"], env["router"], tc.router)
			}
			if env["serverid"] != up(1).String() || env["bootfile"] != tc.bootfl || env["siaddr"] != up(1).String() {
				t.Errorf("serverid %q bootfile %q siaddr %q", env["serverid"], env["bootfile"], env["siaddr"])
			}
			if env["mtu"] != tc.mtu {
				t.Errorf("mtu %q, want %q", env["mtu"], tc.mtu)
			}
		})
	}
	if !strings.Contains(relayLog.String(), "Forwarded BOOTREPLY") && testing.Verbose() {
		t.Logf("dhcrelay said:\n%s", relayLog.String())
	}
}
