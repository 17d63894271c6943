package dhcp

import (
	"context"
	"net"
	"net/netip"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
)

// FuzzHandle6 feeds arbitrary DHCPv6 messages (direct and relayed) to a
// stateful server and checks that it never fails, never answers with a
// message it cannot encode, and never hands out an address outside its range.
func FuzzHandle6(f *testing.F) {
	mac := mustMAC("02:00:00:00:07:00")
	sid := (&dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: mustMAC("02:aa:00:00:00:01")})
	var seeds []dhcpv6.DHCPv6
	sol, err := dhcpv6.NewSolicit(mac, dhcpv6.WithArchType(iana.EFI_X86_64_HTTP), dhcpv6.WithUserClass([]byte("iPXE")),
		dhcpv6.WithIANA(dhcpv6.OptIAAddress{IPv6Addr: net.ParseIP("fd00:1::101")}))
	if err != nil {
		f.Fatal(err)
	}
	seeds = append(seeds, sol)
	rc, _ := dhcpv6.NewSolicit(mac, dhcpv6.WithRapidCommit)
	seeds = append(seeds, rc)
	for _, mt := range []dhcpv6.MessageType{dhcpv6.MessageTypeRequest, dhcpv6.MessageTypeRenew, dhcpv6.MessageTypeRelease,
		dhcpv6.MessageTypeDecline, dhcpv6.MessageTypeRebind, dhcpv6.MessageTypeConfirm, dhcpv6.MessageTypeInformationRequest} {
		m := &dhcpv6.Message{MessageType: mt, TransactionID: dhcpv6.TransactionID{1, 2, 3}}
		m.AddOption(sol.GetOneOption(dhcpv6.OptionClientID))
		if mt != dhcpv6.MessageTypeRebind && mt != dhcpv6.MessageTypeConfirm {
			m.AddOption(dhcpv6.OptServerID(sid))
		}
		if mt != dhcpv6.MessageTypeInformationRequest {
			m.AddOption(&dhcpv6.OptIANA{IaId: [4]byte{0, 0, 7, 0}, Options: dhcpv6.IdentityOptions{Options: dhcpv6.Options{
				&dhcpv6.OptIAAddress{IPv6Addr: net.ParseIP("fd00:1::100")}}}})
		}
		seeds = append(seeds, m)
	}
	fw, _ := dhcpv6.EncapsulateRelay(rc, dhcpv6.MessageTypeRelayForward, net.ParseIP("fd00:1::fe"), net.ParseIP("fe80::1"))
	fw.AddOption(dhcpv6.OptClientLinkLayerAddress(iana.HWTypeEthernet, mac))
	seeds = append(seeds, fw)
	for _, s := range seeds {
		f.Add(s.ToBytes(), uint8(0))
		f.Add(s.ToBytes(), uint8(5))
	}
	f.Fuzz(func(t *testing.T, data []byte, sel uint8) {
		msg, err := dhcpv6.FromBytes(data)
		if err != nil {
			return
		}
		s, err := New6(Config6{Subnet6: Subnet6{Mode: Mode6Stateful, Prefix: netip.MustParsePrefix("fd00:1::/64"),
			RangeStart: netip.MustParseAddr("fd00:1::100"), RangeEnd: netip.MustParseAddr("fd00:1::103")},
			Interface: "fuzz0", ServerIP: netip.MustParseAddr("fd00:1::1"), ServerDUID: sid.ToBytes(),
			HTTPBootURL: "http://[fd00:1::1]:8080", Relayed: true, Discovery: sel&1 == 1}, bitNodes{}, &MemoryLeases6{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		peer := netip.MustParseAddr("fe80::ff:fe00:700")
		if sel&4 != 0 {
			peer = netip.Addr{}
		}
		for range 2 { // twice: the second sees the first's leases
			r, err := s.Handle(context.Background(), msg, peer)
			if err != nil {
				t.Fatalf("handle: %v", err)
			}
			if r == nil {
				continue
			}
			if _, err := dhcpv6.FromBytes(r.ToBytes()); err != nil {
				t.Fatalf("reply does not parse: %v", err)
			}
		}
		ls, _ := s.leases.Leases6(context.Background())
		for _, l := range ls {
			if !inRange6(s.cfg.Subnet6, l.IP) && !(l.IP.Is6() && s.cfg.Prefix.Contains(l.IP)) {
				t.Fatalf("lease %v outside the prefix", l.IP)
			}
		}
	})
}
