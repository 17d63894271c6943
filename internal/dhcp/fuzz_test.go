package dhcp

import (
	"context"
	"net"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

// bitNodes derives what is known of a MAC from its last byte, so that
// fuzzed MACs reach every branch: bit 0 unknown, bit 1 no net-boot, bit 2 a
// static address (10.0.0.<byte 4>, which may be invalid).
type bitNodes struct{}

func (bitNodes) Lookup(_ context.Context, mac net.HardwareAddr) (Client, error) {
	if len(mac) < 6 {
		return Client{}, nil
	}
	b := mac[5]
	c := Client{Known: b&1 == 0, NetBoot: b&2 == 0, Node: "n"}
	if b&4 != 0 {
		c.StaticIP = net.IPv4(10, 0, 0, mac[4])
	}
	return c, nil
}

func FuzzHandle(f *testing.F) {
	mac := mustMAC("02:00:00:00:07:00")
	server := net.IPv4(10, 0, 0, 1)
	seeds := []*dhcpv4.DHCPv4{}
	add := func(mt dhcpv4.MessageType, mods ...dhcpv4.Modifier) {
		m, err := dhcpv4.New(append([]dhcpv4.Modifier{dhcpv4.WithMessageType(mt), dhcpv4.WithHwAddr(mac)}, mods...)...)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, m)
	}
	pxe := dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00007:UNDI:003016"))
	add(dhcpv4.MessageTypeDiscover, pxe, dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_X86_64)))
	add(dhcpv4.MessageTypeDiscover, dhcpv4.WithOption(dhcpv4.OptClassIdentifier("HTTPClient:Arch:00016")), dhcpv4.WithUserClass("iPXE", false))
	add(dhcpv4.MessageTypeRequest, pxe, dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(10, 0, 0, 2))), dhcpv4.WithOption(dhcpv4.OptServerIdentifier(server)))
	add(dhcpv4.MessageTypeRequest, dhcpv4.WithClientIP(net.IPv4(10, 0, 0, 3)), dhcpv4.WithGeneric(optClientMachineID, []byte{0, 1, 2}))
	add(dhcpv4.MessageTypeDecline, dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(10, 0, 0, 2))), dhcpv4.WithOption(dhcpv4.OptServerIdentifier(server)))
	add(dhcpv4.MessageTypeRelease, dhcpv4.WithClientIP(net.IPv4(10, 0, 0, 2)))
	add(dhcpv4.MessageTypeInform, dhcpv4.WithClientIP(net.IPv4(10, 0, 0, 9)), pxe)
	add(dhcpv4.MessageTypeDiscover, dhcpv4.WithGatewayIP(net.IPv4(10, 0, 0, 250)), dhcpv4.WithGeneric(optIPXEEncap, []byte{176, 1, 1}))
	// Relayed from a rack, with option 82 (circuit id, remote id), and a malformed option 82.
	add(dhcpv4.MessageTypeDiscover, pxe, dhcpv4.WithGatewayIP(net.IPv4(10, 9, 0, 1)),
		dhcpv4.WithGeneric(dhcpv4.OptionRelayAgentInformation, []byte{1, 4, 's', 'w', '1', '7', 2, 2, 0xab, 0xcd}))
	add(dhcpv4.MessageTypeRequest, dhcpv4.WithGatewayIP(net.IPv4(10, 8, 3, 1)), dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(10, 8, 1, 7))),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(server)), dhcpv4.WithGeneric(dhcpv4.OptionRelayAgentInformation, []byte{1, 200, 0}))
	add(dhcpv4.MessageTypeRequest, dhcpv4.WithClientIP(net.IPv4(10, 9, 0, 12)))
	for _, s := range seeds {
		f.Add(s.ToBytes(), uint8(0))
		f.Add(s.ToBytes(), uint8(1))
		f.Add(s.ToBytes(), uint8(16))
	}
	f.Fuzz(func(t *testing.T, data []byte, sel uint8) {
		req, err := dhcpv4.FromBytes(data)
		if err != nil {
			return
		}
		mode, port := ModeFull, PortDHCP
		if sel&1 != 0 {
			mode = ModeProxy
		}
		if sel&2 != 0 {
			port = PortPXE
		}
		s := unitServer(t, mode, bitNodes{}, func(c *Config) {
			c.Relayed = sel&4 != 0
			c.Discovery = sel&8 != 0
			if sel&16 != 0 {
				c.Subnets = fuzzSubnets()
			}
		})
		// Twice: the second time the first one's lease is in the store.
		for range 2 {
			reply, err := s.Handle(context.Background(), req, port)
			if err != nil {
				t.Fatalf("handle: %v", err) // MemoryLeases and bitNodes never fail
			}
			if reply == nil {
				continue
			}
			checkReply(t, s, req, reply)
		}
	})
}

func checkReply(t *testing.T, s *Server, req, reply *dhcpv4.DHCPv4) {
	t.Helper()
	back, err := dhcpv4.FromBytes(reply.ToBytes())
	if err != nil {
		t.Fatalf("reply does not parse: %v\n%v", err, reply)
	}
	if back.OpCode != dhcpv4.OpcodeBootReply || back.TransactionID != req.TransactionID ||
		back.ClientHWAddr.String() != req.ClientHWAddr.String() {
		t.Fatalf("reply header does not match request:\n%v\n%v", req, back)
	}
	if !back.ServerIdentifier().Equal(s.cfg.ServerIP) {
		t.Fatalf("server identifier %v", back.ServerIdentifier())
	}
	mt := back.MessageType()
	switch s.cfg.Mode {
	case ModeProxy:
		if (mt != dhcpv4.MessageTypeOffer && mt != dhcpv4.MessageTypeAck) || !back.YourIPAddr.IsUnspecified() {
			t.Fatalf("proxy reply %v with yiaddr %v", mt, back.YourIPAddr)
		}
		if back.BootFileNameOption() == "" {
			t.Fatal("proxy reply without a boot file")
		}
	case ModeFull:
		switch mt {
		case dhcpv4.MessageTypeNak:
		case dhcpv4.MessageTypeOffer, dhcpv4.MessageTypeAck:
			y := back.YourIPAddr
			if req.MessageType() == dhcpv4.MessageTypeInform {
				if !y.IsUnspecified() {
					t.Fatalf("INFORM answered with yiaddr %v", y)
				}
				break
			}
			c, _ := bitNodes{}.Lookup(context.Background(), req.ClientHWAddr)
			p, err := s.poolFor(req)
			if err != nil {
				t.Fatalf("%v answered to a request from no served subnet (giaddr %v)", mt, req.GatewayIPAddr)
			}
			if y.Equal(s.cfg.ServerIP) || !p.contains(y) || (!p.inRange(y) && !y.Equal(c.StaticIP)) {
				t.Fatalf("%v gives %v: server, outside the client's subnet %v, or outside its range and not static", mt, y, p)
			}
			if p.relayed && !back.GatewayIPAddr.Equal(req.GatewayIPAddr) && !req.GatewayIPAddr.IsUnspecified() {
				t.Fatalf("relayed %v lost its giaddr: %v", mt, back.GatewayIPAddr)
			}
		default:
			t.Fatalf("full-mode reply of type %v", mt)
		}
	}
}

// fuzzSubnets are two racks behind relays.
func fuzzSubnets() []Subnet {
	_, a, _ := net.ParseCIDR("10.9.0.0/24")
	_, b, _ := net.ParseCIDR("10.8.0.0/16")
	return []Subnet{
		{Network: a, RangeStart: net.IPv4(10, 9, 0, 10), RangeEnd: net.IPv4(10, 9, 0, 20)},
		{Network: b, RangeStart: net.IPv4(10, 8, 1, 1), RangeEnd: net.IPv4(10, 8, 1, 50), Router: net.IPv4(10, 8, 0, 1), MTU: 9000},
	}
}
