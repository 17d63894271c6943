package dhcp

import (
	"bytes"
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/insomniacslk/dhcp/iana"

	"github.com/ironwork/ironwork/internal/lockedbuf"
)

// TestProxyModeBesideSiteDHCPThroughRelay: a rack behind ISC's dhcrelay, which forwards every
// request to two servers, the site's own DHCP server (dnsmasq, owning the rack's addresses)
// and our proxyDHCP. A PXE client in the rack gets dnsmasq's address offer and our boot
// offer through the relay, leases its address from dnsmasq, then asks our proxy on port 4011
// (routed through the relay) and gets the boot file; an unknown MAC gets dnsmasq's offer only.
func TestProxyModeBesideSiteDHCPThroughRelay(t *testing.T) {
	requireRoot(t, "dnsmasq", "dhcrelay")
	n := int(nsSeq.Load()%200) + 1
	up := func(h int) net.IP { return net.IPv4(10, 74, byte(n), byte(h)).To4() }   // proxy's network
	site := func(h int) net.IP { return net.IPv4(10, 75, byte(n), byte(h)).To4() } // site DHCP server's
	rack := func(h int) net.IP { return net.IPv4(10, 76, byte(n), byte(h)).To4() }
	srv, dhcpNS, relay, cli := addNS(t, "psrv"), addNS(t, "psite"), addNS(t, "prly"), addNS(t, "prack")
	vethPair(t, srv, "up0", relay, "up1")
	vethPair(t, dhcpNS, "st0", relay, "st1")
	vethPair(t, relay, "rk0", cli, "rk1")
	run(t, "ip", "-n", srv, "addr", "add", up(1).String()+"/24", "dev", "up0")
	run(t, "ip", "-n", relay, "addr", "add", up(2).String()+"/24", "dev", "up1")
	run(t, "ip", "-n", dhcpNS, "addr", "add", site(1).String()+"/24", "dev", "st0")
	run(t, "ip", "-n", relay, "addr", "add", site(2).String()+"/24", "dev", "st1")
	run(t, "ip", "-n", relay, "addr", "add", rack(1).String()+"/24", "dev", "rk0")
	run(t, "ip", "netns", "exec", relay, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	run(t, "ip", "-n", srv, "route", "add", rack(0).String()+"/24", "via", up(2).String())
	run(t, "ip", "-n", dhcpNS, "route", "add", rack(0).String()+"/24", "via", site(2).String())

	startDnsmasq(t, dhcpNS, "st0", rack(50), rack(59))
	known, unknown := mustMAC("52:54:00:74:00:01"), mustMAC("52:54:00:74:00:ff")
	setMAC(t, cli, "rk1", known)
	nodes := mapNodes{known.String(): {Known: true, NetBoot: true, Node: "node-r"}}
	_, rackNet, _ := net.ParseCIDR(rack(0).String() + "/24")
	startServer(t, srv, Config{Mode: ModeProxy, Interface: "up0", HTTPBootURL: "http://" + up(1).String(),
		Subnets: []Subnet{{Network: rackNet}}}, nodes, nil)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var relayLog lockedbuf.Buffer
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", relay, "dhcrelay", "-4", "-d",
		"-pf", filepath.Join(t.TempDir(), "dhcrelay.pid"), "-id", "rk0", "-iu", "up1", "-iu", "st1",
		up(1).String(), site(1).String())
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

	machineID := append([]byte{0}, bytes.Repeat([]byte{0x74}, 16)...)
	var siteOffer, proxyOffer *dhcpv4.DHCPv4
	for try := 0; try < 3 && (siteOffer == nil || proxyOffer == nil); try++ { // the relay may still be starting
		for _, o := range discoverAll(t, cli, "rk1", pxeDiscover(t, known, machineID), 3*time.Second) {
			switch {
			case o.ServerIdentifier().Equal(site(1)):
				siteOffer = o
			case o.ServerIdentifier().Equal(up(1)):
				proxyOffer = o
			default:
				t.Errorf("offer from unexpected server %v", o.ServerIdentifier())
			}
		}
	}
	if siteOffer == nil || proxyOffer == nil {
		t.Fatalf("want an offer from dnsmasq and one from the proxy through the relay: site %v proxy %v", siteOffer != nil, proxyOffer != nil)
	}
	if ip := ipToU32(siteOffer.YourIPAddr); ip < ipToU32(rack(50)) || ip > ipToU32(rack(59)) {
		t.Errorf("dnsmasq offered %v, outside the rack's range", siteOffer.YourIPAddr)
	}
	if !proxyOffer.GatewayIPAddr.Equal(rack(1)) {
		t.Errorf("proxy offer giaddr %v, want the relay's %v", proxyOffer.GatewayIPAddr, rack(1))
	}
	checkProxyReply(t, proxyOffer, up(1), machineID)

	// The address comes from dnsmasq through the relay; the PXE client then asks the proxy
	// on port 4011 from that address, routed through the relay.
	var leased net.IP
	err := inNS(cli, func() error {
		c, err := nclient4.New("rk1", nclient4.WithHWAddr(known), nclient4.WithTimeout(3*time.Second), nclient4.WithRetry(2))
		if err != nil {
			return err
		}
		defer c.Close()
		l, err := c.RequestFromOffer(ctx, siteOffer)
		if err != nil {
			return err
		}
		leased = l.ACK.YourIPAddr
		return nil
	})
	if err != nil {
		t.Fatalf("request from dnsmasq through the relay: %v", err)
	}
	run(t, "ip", "-n", cli, "addr", "add", leased.String()+"/24", "dev", "rk1")
	run(t, "ip", "-n", cli, "route", "add", "default", "via", rack(1).String())
	var ack *dhcpv4.DHCPv4
	err = inNS(cli, func() error {
		conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: leased, Port: dhcpv4.ClientPort})
		if err != nil {
			return err
		}
		defer conn.Close()
		req, err := dhcpv4.New(dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest), dhcpv4.WithHwAddr(known),
			dhcpv4.WithClientIP(leased),
			dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00007:UNDI:003016")),
			dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_X86_64)),
			dhcpv4.WithGeneric(optClientMachineID, machineID))
		if err != nil {
			return err
		}
		if _, err := conn.WriteToUDP(req.ToBytes(), &net.UDPAddr{IP: up(1), Port: PortPXE}); err != nil {
			return err
		}
		conn.SetReadDeadline(time.Now().Add(3 * time.Second))
		buf := make([]byte, 1500)
		n, _, err := conn.ReadFromUDP(buf)
		if err != nil {
			return err
		}
		ack, err = dhcpv4.FromBytes(buf[:n])
		return err
	})
	if err != nil {
		t.Fatalf("port 4011 request across the relay's router: %v", err)
	}
	if ack.MessageType() != dhcpv4.MessageTypeAck {
		t.Errorf("port 4011 reply is %v, want ACK", ack.MessageType())
	}
	checkProxyReply(t, ack, up(1), machineID)

	// An unknown MAC gets dnsmasq's offer only.
	setMAC(t, cli, "rk1", unknown)
	var fromSite int
	for _, o := range discoverAll(t, cli, "rk1", pxeDiscover(t, unknown, machineID), 2*time.Second) {
		if o.ServerIdentifier().Equal(up(1)) {
			t.Errorf("proxy answered unknown MAC: %v", o.Summary())
		}
		if o.ServerIdentifier().Equal(site(1)) {
			fromSite++
		}
	}
	if fromSite == 0 {
		t.Error("no offer from dnsmasq for the unknown MAC (the control case)")
	}
}
