package dhcp

import (
	"bytes"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

func cidr(t *testing.T, s string) *net.IPNet {
	t.Helper()
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRelayedSubnets serves two racks behind relays and the attached network from one server:
// each client gets an address, mask, router, MTU and lease time of its own subnet, the
// relay's giaddr and option 82 come back, a client that moves racks gets an address in its
// new rack and is refused its old one, and requests relayed from unknown subnets are dropped.
func TestRelayedSubnets(t *testing.T) {
	a, b, c := mustMAC("02:00:00:00:0a:01"), mustMAC("02:00:00:00:0b:01"), mustMAC("02:00:00:00:0c:01")
	nodes := mapNodes{a.String(): {Known: true, NetBoot: true}, b.String(): {Known: true}, c.String(): {Known: true}}
	s := unitServer(t, ModeFull, nodes, func(cfg *Config) {
		cfg.Subnets = []Subnet{
			{Network: cidr(t, "10.9.0.0/24"), RangeStart: net.IPv4(10, 9, 0, 10), RangeEnd: net.IPv4(10, 9, 0, 20)},
			{Network: cidr(t, "10.8.0.0/16"), RangeStart: net.IPv4(10, 8, 1, 1), RangeEnd: net.IPv4(10, 8, 1, 50),
				Router: net.IPv4(10, 8, 0, 254), DNS: []net.IP{net.IPv4(10, 8, 0, 53)}, MTU: 9000, LeaseTime: 10 * time.Minute},
		}
	})
	rai := []byte{1, 4, 's', 'w', '1', '7', 2, 2, 0xab, 0xcd}
	relayA := []dhcpv4.Modifier{dhcpv4.WithGatewayIP(net.IPv4(10, 9, 0, 1)), dhcpv4.WithGeneric(dhcpv4.OptionRelayAgentInformation, rai)}

	pxeA := dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00000:UNDI:002001"))
	offer := handle(t, s, discover(t, a, append(relayA, pxeA)...), PortDHCP)
	if offer == nil {
		t.Fatal("relayed DISCOVER from rack A not answered")
	}
	y := offer.YourIPAddr
	if !cidr(t, "10.9.0.0/24").Contains(y) || y[3] < 10 || y[3] > 20 {
		t.Errorf("rack A offer %v: not in 10.9.0.10-20", y)
	}
	if !offer.GatewayIPAddr.Equal(net.IPv4(10, 9, 0, 1)) {
		t.Errorf("giaddr %v, want the relay's", offer.GatewayIPAddr)
	}
	if got := offer.Options.Get(dhcpv4.OptionRelayAgentInformation); !bytes.Equal(got, rai) {
		t.Errorf("option 82 %x, want %x echoed", got, rai)
	}
	if m := offer.SubnetMask(); !bytes.Equal(m, net.CIDRMask(24, 32)) {
		t.Errorf("mask %v", m)
	}
	if r := offer.Router(); len(r) != 1 || !r[0].Equal(net.IPv4(10, 9, 0, 1)) {
		t.Errorf("router %v, want the relay's address (no router configured)", r)
	}
	if offer.BootFileNameOption() == "" {
		t.Error("a net-booting node behind a relay got no boot file")
	}
	ack := handle(t, s, request(t, a, y, s.cfg.ServerIP, relayA...), PortDHCP)
	if ack == nil || ack.MessageType() != dhcpv4.MessageTypeAck || !ack.YourIPAddr.Equal(y) {
		t.Fatalf("rack A REQUEST: %v", ack)
	}

	relayB := dhcpv4.WithGatewayIP(net.IPv4(10, 8, 3, 1))
	ob := handle(t, s, discover(t, b, relayB), PortDHCP)
	if ob == nil || !(ob.YourIPAddr[2] == 1 && ob.YourIPAddr[0] == 10 && ob.YourIPAddr[1] == 8) {
		t.Fatalf("rack B offer: %v", ob)
	}
	if r := ob.Router(); len(r) != 1 || !r[0].Equal(net.IPv4(10, 8, 0, 254)) {
		t.Errorf("rack B router %v", r)
	}
	if d := ob.DNS(); len(d) != 1 || !d[0].Equal(net.IPv4(10, 8, 0, 53)) {
		t.Errorf("rack B DNS %v", d)
	}
	if mtu := ob.Options.Get(dhcpv4.OptionInterfaceMTU); !bytes.Equal(mtu, []byte{0x23, 0x28}) {
		t.Errorf("rack B MTU option %x, want 9000", mtu)
	}
	if lt := ob.IPAddressLeaseTime(0); lt != 10*time.Minute {
		t.Errorf("rack B lease time %v", lt)
	}
	if m := ob.SubnetMask(); !bytes.Equal(m, net.CIDRMask(16, 32)) {
		t.Errorf("rack B mask %v", m)
	}

	// The attached network is served as before, with its own mask and no MTU.
	oc := handle(t, s, discover(t, c), PortDHCP)
	if oc == nil || !s.inSubnet(oc.YourIPAddr) || oc.Options.Get(dhcpv4.OptionInterfaceMTU) != nil {
		t.Errorf("attached client: %v", oc)
	}

	// Node a moves to rack B: a new address there; its rack-A address is refused through B.
	moved := handle(t, s, discover(t, a, relayB), PortDHCP)
	if moved == nil || !cidr(t, "10.8.0.0/16").Contains(moved.YourIPAddr) {
		t.Fatalf("moved client's offer: %v", moved)
	}
	if nak := handle(t, s, request(t, a, y, s.cfg.ServerIP, relayB), PortDHCP); nak == nil || nak.MessageType() != dhcpv4.MessageTypeNak {
		t.Errorf("rack-A address requested through rack B: %v, want NAK", nak)
	}

	// A renewal sent straight to the server (no relay) is served from the client's subnet.
	renew, err := dhcpv4.New(dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest), dhcpv4.WithHwAddr(b),
		dhcpv4.WithClientIP(ob.YourIPAddr))
	if err != nil {
		t.Fatal(err)
	}
	if handle(t, s, request(t, b, ob.YourIPAddr, s.cfg.ServerIP, relayB), PortDHCP) == nil {
		t.Fatal("rack B REQUEST not answered")
	}
	if r := handle(t, s, renew, PortDHCP); r == nil || r.MessageType() != dhcpv4.MessageTypeAck || !bytes.Equal(r.SubnetMask(), net.CIDRMask(16, 32)) {
		t.Errorf("unicast renewal from rack B: %v", r)
	}

	// Unknown subnets, and the attached subnet's own giaddr without Relayed, are dropped.
	for _, gi := range []net.IP{net.IPv4(192, 0, 2, 1), net.IPv4(10, 9, 1, 1), net.IPv4(10, 0, 0, 250)} {
		if r := handle(t, s, discover(t, c, dhcpv4.WithGatewayIP(gi)), PortDHCP); r != nil {
			t.Errorf("request relayed from %v answered: %v", gi, r)
		}
	}

	// Proxy mode answers boot requests relayed from the configured subnets only.
	p := unitServer(t, ModeProxy, nodes, func(cfg *Config) {
		cfg.Subnets = []Subnet{{Network: cidr(t, "10.9.0.0/24")}}
	})
	pxe := dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00000:UNDI:002001"))
	if r := handle(t, p, discover(t, a, pxe, dhcpv4.WithGatewayIP(net.IPv4(10, 9, 0, 1))), PortDHCP); r == nil || !r.YourIPAddr.IsUnspecified() || r.BootFileNameOption() == "" {
		t.Errorf("proxy reply through a relay: %v", r)
	}
	if r := handle(t, p, discover(t, a, pxe, dhcpv4.WithGatewayIP(net.IPv4(10, 7, 0, 1))), PortDHCP); r != nil {
		t.Errorf("proxy answered a relay from an unknown subnet: %v", r)
	}
}

func TestSubnetConfigErrors(t *testing.T) {
	base := func() Config {
		return Config{Mode: ModeFull, Interface: "unit0", ServerIP: net.IPv4(10, 0, 0, 1), Netmask: net.CIDRMask(24, 32),
			RangeStart: net.IPv4(10, 0, 0, 100), RangeEnd: net.IPv4(10, 0, 0, 200), HTTPBootURL: "http://10.0.0.1:8080"}
	}
	sn := func(n, start, end string) Subnet {
		return Subnet{Network: cidr(t, n), RangeStart: net.ParseIP(start), RangeEnd: net.ParseIP(end)}
	}
	for _, tc := range []struct {
		name    string
		subnets []Subnet
		want    string
	}{
		{"range outside", []Subnet{sn("10.9.0.0/24", "10.9.0.10", "10.9.1.20")}, "not inside the subnet"},
		{"range reversed", []Subnet{sn("10.9.0.0/24", "10.9.0.30", "10.9.0.20")}, "start is after end"},
		{"no range in full mode", []Subnet{{Network: cidr(t, "10.9.0.0/24")}}, "both ends must be IPv4"},
		{"networks overlap", []Subnet{sn("10.9.0.0/24", "10.9.0.10", "10.9.0.20"), sn("10.9.0.0/16", "10.9.5.1", "10.9.5.9")}, "overlap (networks)"},
		{"range overlaps the attached one", []Subnet{sn("10.0.0.0/16", "10.0.0.150", "10.0.0.160")}, "overlap (address ranges)"},
		{"router outside", []Subnet{{Network: cidr(t, "10.9.0.0/24"), RangeStart: net.IPv4(10, 9, 0, 10), RangeEnd: net.IPv4(10, 9, 0, 20), Router: net.IPv4(10, 8, 0, 1)}}, "router 10.8.0.1 is not a host address"},
		{"bad MTU", []Subnet{{Network: cidr(t, "10.9.0.0/24"), RangeStart: net.IPv4(10, 9, 0, 10), RangeEnd: net.IPv4(10, 9, 0, 20), MTU: 20}}, "MTU 20"},
		{"no network", []Subnet{{RangeStart: net.IPv4(10, 9, 0, 10), RangeEnd: net.IPv4(10, 9, 0, 20)}}, "network must be an IPv4 CIDR"},
		{"IPv6", []Subnet{{Network: cidr(t, "fd00::/64")}}, "network must be an IPv4 CIDR"},
		{"too wide", []Subnet{sn("10.0.0.0/7", "10.1.0.1", "10.1.0.9")}, "/8 to /30"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base()
			cfg.Subnets = tc.subnets
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate: %v, want an error containing %q", err, tc.want)
			}
			if _, err := New(cfg, mapNodes{}, NewMemoryLeases(), nil); err == nil {
				t.Error("New accepted it")
			}
		})
	}
	cfg := base()
	cfg.Subnets = []Subnet{sn("10.0.0.0/24", "10.0.0.10", "10.0.0.20")}
	if _, err := New(cfg, mapNodes{}, NewMemoryLeases(), nil); err == nil || !strings.Contains(err.Error(), "interface's own subnet") {
		t.Errorf("the attached subnet as a relayed one: %v", err)
	}
}
