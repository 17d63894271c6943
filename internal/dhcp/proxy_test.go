package dhcp

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/insomniacslk/dhcp/iana"
)

// startDnsmasq runs dnsmasq as the site DHCP server in ns on ifname
// (DHCP only: --port=0), handing out lo..hi, until the test ends.
func startDnsmasq(t *testing.T, ns, ifname string, lo, hi net.IP) {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "dnsmasq", "--port=0", "--no-daemon",
		"--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--bind-interfaces", "--interface="+ifname,
		"--except-interface=lo", "--no-ping", "--log-dhcp", "--user=root",
		"--dhcp-range="+lo.String()+","+hi.String()+",255.255.255.0,10m",
		"--pid-file="+filepath.Join(dir, "pid"), "--dhcp-leasefile="+filepath.Join(dir, "leases"))
	var mu sync.Mutex
	var log bytes.Buffer
	w := writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return log.Write(p) })
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start dnsmasq: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cancel()
		<-done
		if t.Failed() {
			mu.Lock()
			t.Logf("dnsmasq log:\n%s", log.String())
			mu.Unlock()
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		up := strings.Contains(log.String(), "DHCP, IP range")
		mu.Unlock()
		if up {
			return
		}
		select {
		case err := <-done:
			t.Fatalf("dnsmasq exited: %v\n%s", err, log.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("dnsmasq did not start")
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// proxyNet: namespace "site" has bridge br0 (10.77.n.1, dnsmasq); namespace
// "proxy" (10.77.n.2, our proxyDHCP) and namespace "client" hang off it.
type proxyNet struct {
	site, proxy, client string
	n                   int
}

func (pn *proxyNet) ip(host int) net.IP { return net.IPv4(10, 77, byte(pn.n), byte(host)).To4() }

func newProxyNet(t *testing.T) *proxyNet {
	pn := &proxyNet{site: addNS(t, "site"), proxy: addNS(t, "pxy"), client: addNS(t, "cli")}
	pn.n = int(nsSeq.Load()%200) + 1
	run(t, "ip", "-n", pn.site, "link", "add", "br0", "type", "bridge")
	run(t, "ip", "-n", pn.site, "link", "set", "br0", "up")
	run(t, "ip", "-n", pn.site, "addr", "add", pn.ip(1).String()+"/24", "dev", "br0")
	vethPair(t, pn.site, "tpxy", pn.proxy, "pxy0")
	vethPair(t, pn.site, "tcli", pn.client, "cli0")
	run(t, "ip", "-n", pn.site, "link", "set", "tpxy", "master", "br0")
	run(t, "ip", "-n", pn.site, "link", "set", "tcli", "master", "br0")
	run(t, "ip", "-n", pn.proxy, "addr", "add", pn.ip(2).String()+"/24", "dev", "pxy0")
	return pn
}

// discoverAll broadcasts disc from the client namespace and collects every
// OFFER for it during wait.
func discoverAll(t *testing.T, ns, ifname string, disc *dhcpv4.DHCPv4, wait time.Duration) []*dhcpv4.DHCPv4 {
	t.Helper()
	var offers []*dhcpv4.DHCPv4
	err := inNS(ns, func() error {
		c, err := nclient4.New(ifname, nclient4.WithHWAddr(disc.ClientHWAddr), nclient4.WithTimeout(wait), nclient4.WithRetry(1))
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.SendAndRead(context.Background(), nclient4.DefaultServers, disc, func(p *dhcpv4.DHCPv4) bool {
			if p.MessageType() == dhcpv4.MessageTypeOffer {
				offers = append(offers, p)
			}
			return false
		})
		if errors.Is(err, nclient4.ErrNoResponse) {
			err = nil
		}
		return err
	})
	if err != nil {
		t.Fatalf("discover: %v", err)
	}
	return offers
}

func pxeDiscover(t *testing.T, mac net.HardwareAddr, machineID []byte) *dhcpv4.DHCPv4 {
	d, err := dhcpv4.NewDiscovery(mac, dhcpv4.WithBroadcast(true),
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00007:UNDI:003016")),
		dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_X86_64)),
		dhcpv4.WithGeneric(optClientMachineID, machineID))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestProxyModeBesideDnsmasq(t *testing.T) {
	requireRoot(t, "dnsmasq")
	pn := newProxyNet(t)
	startDnsmasq(t, pn.site, "br0", pn.ip(50), pn.ip(99))
	known := mustMAC("52:54:00:bb:00:01")
	unknown := mustMAC("52:54:00:bb:00:ff")
	nodes := mapNodes{known.String(): {Known: true, NetBoot: true, Node: "node-p"}}
	startServer(t, pn.proxy, Config{Mode: ModeProxy, Interface: "pxy0", HTTPBootURL: "http://" + pn.ip(2).String()}, nodes, nil)
	machineID := append([]byte{0}, bytes.Repeat([]byte{0xab}, 16)...)

	offers := discoverAll(t, pn.client, "cli0", pxeDiscover(t, known, machineID), 3*time.Second)
	var site, proxy *dhcpv4.DHCPv4
	for _, o := range offers {
		switch {
		case o.ServerIdentifier().Equal(pn.ip(1)):
			site = o
		case o.ServerIdentifier().Equal(pn.ip(2)):
			proxy = o
		default:
			t.Errorf("offer from unexpected server %v", o.ServerIdentifier())
		}
	}
	if site == nil || proxy == nil {
		t.Fatalf("want an offer from dnsmasq and one from the proxy, got %d offers: site %v proxy %v", len(offers), site != nil, proxy != nil)
	}
	if ip := ipToU32(site.YourIPAddr); ip < ipToU32(pn.ip(50)) || ip > ipToU32(pn.ip(99)) {
		t.Errorf("dnsmasq offered %v, outside its range", site.YourIPAddr)
	}
	checkProxyReply(t, proxy, pn.ip(2), machineID)

	// The address comes from dnsmasq; then the PXE client asks the proxy
	// on port 4011 from that address.
	var leased net.IP
	err := inNS(pn.client, func() error {
		c, err := nclient4.New("cli0", nclient4.WithHWAddr(known), nclient4.WithTimeout(2*time.Second), nclient4.WithRetry(2))
		if err != nil {
			return err
		}
		defer c.Close()
		l, err := c.RequestFromOffer(context.Background(), site)
		if err != nil {
			return err
		}
		leased = l.ACK.YourIPAddr
		return nil
	})
	if err != nil {
		t.Fatalf("request from dnsmasq: %v", err)
	}
	run(t, "ip", "-n", pn.client, "addr", "add", leased.String()+"/24", "dev", "cli0")
	var ack *dhcpv4.DHCPv4
	err = inNS(pn.client, func() error {
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
		if _, err := conn.WriteToUDP(req.ToBytes(), &net.UDPAddr{IP: pn.ip(2), Port: PortPXE}); err != nil {
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
		t.Fatalf("port 4011 request: %v", err)
	}
	if ack.MessageType() != dhcpv4.MessageTypeAck {
		t.Errorf("port 4011 reply is %v, want ACK", ack.MessageType())
	}
	checkProxyReply(t, ack, pn.ip(2), machineID)

	// An unknown MAC gets dnsmasq's offer only.
	offers = discoverAll(t, pn.client, "cli0", pxeDiscover(t, unknown, machineID), 2*time.Second)
	var fromSite int
	for _, o := range offers {
		if o.ServerIdentifier().Equal(pn.ip(2)) {
			t.Errorf("proxy answered unknown MAC: %v", o.Summary())
		}
		if o.ServerIdentifier().Equal(pn.ip(1)) {
			fromSite++
		}
	}
	if fromSite == 0 {
		t.Error("no offer from dnsmasq for the unknown MAC (the control case)")
	}
}

func checkProxyReply(t *testing.T, r *dhcpv4.DHCPv4, server net.IP, machineID []byte) {
	t.Helper()
	if !r.YourIPAddr.IsUnspecified() {
		t.Errorf("proxy reply has yiaddr %v, want 0.0.0.0", r.YourIPAddr)
	}
	if r.ClassIdentifier() != "PXEClient" {
		t.Errorf("proxy reply option 60 = %q, want PXEClient", r.ClassIdentifier())
	}
	if r.BootFileNameOption() != "snponly.efi" || r.BootFileName != "snponly.efi" {
		t.Errorf("proxy boot file: option 67 %q, file %q, want snponly.efi", r.BootFileNameOption(), r.BootFileName)
	}
	if !r.ServerIPAddr.Equal(server) || r.TFTPServerName() != server.String() {
		t.Errorf("proxy next-server %v, option 66 %q, want %v", r.ServerIPAddr, r.TFTPServerName(), server)
	}
	if got := r.Options.Get(optClientMachineID); !bytes.Equal(got, machineID) {
		t.Errorf("option 97 = %x, want %x echoed", got, machineID)
	}
	if got := r.Options.Get(optVendorSpecific); !bytes.Equal(got, []byte{6, 1, 8, 0xff}) {
		t.Errorf("option 43 = %x, want PXE discovery control 8", got)
	}
}

// TestProxyModeSameHostAsDnsmasq runs the proxy on the very interface
// where dnsmasq serves: both get the broadcast DISCOVER, and every unicast
// renewal addressed to dnsmasq still reaches dnsmasq (the proxy's port-67
// socket is bound to 255.255.255.255; bound to 0.0.0.0 it took them all).
func TestProxyModeSameHostAsDnsmasq(t *testing.T) {
	requireRoot(t, "dnsmasq")
	pn := newProxyNet(t)
	startDnsmasq(t, pn.site, "br0", pn.ip(50), pn.ip(99))
	known := mustMAC("52:54:00:bb:00:02")
	setMAC(t, pn.client, "cli0", known) // dnsmasq unicasts renewals to chaddr
	nodes := mapNodes{known.String(): {Known: true, NetBoot: true, Node: "node-p"}}
	startServer(t, pn.site, Config{Mode: ModeProxy, Interface: "br0", HTTPBootURL: "http://" + pn.ip(1).String()}, nodes, nil)
	machineID := append([]byte{0}, bytes.Repeat([]byte{0xcd}, 16)...)

	var site, proxy *dhcpv4.DHCPv4
	for _, o := range discoverAll(t, pn.client, "cli0", pxeDiscover(t, known, machineID), 3*time.Second) {
		if o.YourIPAddr.IsUnspecified() {
			proxy = o
		} else {
			site = o
		}
	}
	if site == nil || proxy == nil {
		t.Fatalf("want dnsmasq's offer and the proxy's: site %v proxy %v", site != nil, proxy != nil)
	}
	checkProxyReply(t, proxy, pn.ip(1), machineID)

	var leased net.IP
	err := inNS(pn.client, func() error {
		c, err := nclient4.New("cli0", nclient4.WithTimeout(2*time.Second), nclient4.WithRetry(2))
		if err != nil {
			return err
		}
		defer c.Close()
		l, err := c.RequestFromOffer(context.Background(), site)
		if err != nil {
			return err
		}
		leased = l.ACK.YourIPAddr
		return nil
	})
	if err != nil {
		t.Fatalf("request from dnsmasq: %v", err)
	}
	run(t, "ip", "-n", pn.client, "addr", "add", leased.String()+"/24", "dev", "cli0")
	// Renewals from ten source ports (so any SO_REUSEPORT hashing between
	// the two sockets would send some to the proxy).
	answered := 0
	for port := 2000; port < 2010; port++ {
		err := inNS(pn.client, func() error {
			conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: leased, Port: port})
			if err != nil {
				return err
			}
			defer conn.Close()
			req, err := dhcpv4.New(dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest), dhcpv4.WithHwAddr(known), dhcpv4.WithClientIP(leased))
			if err != nil {
				return err
			}
			if _, err := conn.WriteToUDP(req.ToBytes(), &net.UDPAddr{IP: pn.ip(1), Port: PortDHCP}); err != nil {
				return err
			}
			conn.SetReadDeadline(time.Now().Add(time.Second))
			buf := make([]byte, 1500)
			n, _, err := conn.ReadFromUDP(buf) // dnsmasq answers the source port
			if err != nil {
				return nil
			}
			if ack, err := dhcpv4.FromBytes(buf[:n]); err == nil && ack.MessageType() == dhcpv4.MessageTypeAck {
				answered++
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if answered != 10 {
		t.Errorf("dnsmasq ACKed %d of 10 unicast renewals; the proxy must not take them", answered)
	}
}
