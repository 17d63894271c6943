package dhcp

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
)

var (
	srvDUID6 = (&dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: mustMAC("02:aa:00:00:00:01")}).ToBytes()
	prefix6  = netip.MustParsePrefix("fd00:1::/64")
)

func unitServer6(t *testing.T, mode Mode6, nodes Nodes, mutate ...func(*Config6)) (*Server6, *MemoryLeases6) {
	t.Helper()
	cfg := Config6{
		Subnet6: Subnet6{Mode: mode, Prefix: prefix6,
			DNS: []netip.Addr{netip.MustParseAddr("fd00:1::53")}},
		Interface: "unit0", ServerIP: netip.MustParseAddr("fd00:1::1"), ServerDUID: srvDUID6,
		HTTPBootURL: "http://[fd00:1::1]:8080/", PreferredLifetime: time.Hour, ValidLifetime: 2 * time.Hour,
		OfferHold: time.Minute, Relayed: true,
	}
	if mode == Mode6Stateful {
		cfg.RangeStart, cfg.RangeEnd = netip.MustParseAddr("fd00:1::100"), netip.MustParseAddr("fd00:1::103")
	}
	for _, m := range mutate {
		m(&cfg)
	}
	leases := &MemoryLeases6{}
	s, err := New6(cfg, nodes, leases, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return s, leases
}

// handle6 sends m through the wire format both ways, as the socket would.
func handle6(t *testing.T, s *Server6, m dhcpv6.DHCPv6, peer netip.Addr) dhcpv6.DHCPv6 {
	t.Helper()
	in, err := dhcpv6.FromBytes(m.ToBytes())
	if err != nil {
		t.Fatalf("parse request: %v", err)
	}
	r, err := s.Handle(context.Background(), in, peer)
	if err != nil {
		t.Fatalf("handle: %v", err)
	}
	if r == nil {
		return nil
	}
	out, err := dhcpv6.FromBytes(r.ToBytes())
	if err != nil {
		t.Fatalf("parse reply %v: %v", r, err)
	}
	return out
}

func msg6(t *testing.T, r dhcpv6.DHCPv6) *dhcpv6.Message {
	t.Helper()
	m, ok := r.(*dhcpv6.Message)
	if !ok {
		t.Fatalf("reply %v is not a client/server message", r)
	}
	return m
}

func solicit6(t *testing.T, mac net.HardwareAddr, mods ...dhcpv6.Modifier) *dhcpv6.Message {
	t.Helper()
	m, err := dhcpv6.NewSolicit(mac, mods...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// msgFrom builds a message of type mt carrying the client ID of c, the
// given server ID (nil: none) and options.
func msgFrom(c *dhcpv6.Message, mt dhcpv6.MessageType, sid []byte, opts ...dhcpv6.Option) *dhcpv6.Message {
	m := &dhcpv6.Message{MessageType: mt, TransactionID: dhcpv6.TransactionID{1, 2, 3}}
	m.AddOption(c.GetOneOption(dhcpv6.OptionClientID))
	if sid != nil {
		d, _ := dhcpv6.DUIDFromBytes(sid)
		m.AddOption(dhcpv6.OptServerID(d))
	}
	for _, o := range opts {
		m.AddOption(o)
	}
	return m
}

func iaAddr(iaid [4]byte, ips ...string) *dhcpv6.OptIANA {
	ia := &dhcpv6.OptIANA{IaId: iaid}
	for _, ip := range ips {
		ia.Options.Add(&dhcpv6.OptIAAddress{IPv6Addr: net.ParseIP(ip)})
	}
	return ia
}

func addrOf(t *testing.T, m *dhcpv6.Message) netip.Addr {
	t.Helper()
	ia := m.Options.OneIANA()
	if ia == nil {
		t.Fatalf("no IA_NA in %v", m.Summary())
	}
	a := ia.Options.OneAddress()
	if a == nil {
		t.Fatalf("no address in IA_NA of %v", m.Summary())
	}
	ip, _ := netip.AddrFromSlice(a.IPv6Addr)
	return ip
}

func statusOf(m *dhcpv6.Message) iana.StatusCode {
	if st := m.Options.Status(); st != nil {
		return st.StatusCode
	}
	return iana.StatusSuccess
}

func iaStatus(m *dhcpv6.Message) iana.StatusCode {
	if ia := m.Options.OneIANA(); ia != nil {
		if st := ia.Options.Status(); st != nil {
			return st.StatusCode
		}
	}
	return iana.StatusSuccess
}

func iaid(mac net.HardwareAddr) [4]byte {
	var id [4]byte
	copy(id[:], mac[len(mac)-4:])
	return id
}

func TestDHCPv6SolicitRequestHTTPBoot(t *testing.T) {
	mac := mustMAC("02:00:00:00:06:01")
	s, leases := unitServer6(t, Mode6Stateful, mapNodes{mac.String(): {Known: true, NetBoot: true, Node: "n1"}})
	sol := solicit6(t, mac, dhcpv6.WithArchType(iana.EFI_X86_64_HTTP),
		dhcpv6.WithOption(&dhcpv6.OptVendorClass{EnterpriseNumber: 343, Data: [][]byte{[]byte("HTTPClient:Arch:00016")}}))
	adv := msg6(t, handle6(t, s, sol, netip.Addr{}))
	if adv.Type() != dhcpv6.MessageTypeAdvertise {
		t.Fatalf("answer to Solicit is %v, want ADVERTISE", adv.Type())
	}
	ip := addrOf(t, adv)
	if !inRange6(s.cfg.Subnet6, ip) {
		t.Fatalf("advertised %v, outside the range", ip)
	}
	if got, want := adv.Options.BootFileURL(), "http://[fd00:1::1]:8080/ipxe.efi"; got != want {
		t.Errorf("boot file URL = %q, want %q", got, want)
	}
	if vc := adv.Options.VendorClass(343); len(vc) != 1 || string(vc[0]) != "HTTPClient" {
		t.Errorf("vendor class = %q, want HTTPClient", vc)
	}
	if adv.Options.Preference() != 255 {
		t.Errorf("preference = %d, want 255", adv.Options.Preference())
	}
	if dns := adv.Options.DNS(); len(dns) != 1 || !dns[0].Equal(net.ParseIP("fd00:1::53")) {
		t.Errorf("DNS = %v", dns)
	}
	if adv.Options.ServerID() == nil || string(adv.Options.ServerID().ToBytes()) != string(srvDUID6) {
		t.Errorf("server ID = %v", adv.Options.ServerID())
	}
	req, err := dhcpv6.NewRequestFromAdvertise(adv)
	if err != nil {
		t.Fatal(err)
	}
	rep := msg6(t, handle6(t, s, req, netip.Addr{}))
	if rep.Type() != dhcpv6.MessageTypeReply || addrOf(t, rep) != ip {
		t.Fatalf("Request answered %v with %v, want REPLY with %v", rep.Type(), rep.Summary(), ip)
	}
	ia := rep.Options.OneIANA()
	if ia.T1 != 30*time.Minute || ia.T2 != 48*time.Minute || ia.Options.OneAddress().ValidLifetime != 2*time.Hour {
		t.Errorf("IA_NA T1 %v T2 %v valid %v", ia.T1, ia.T2, ia.Options.OneAddress().ValidLifetime)
	}
	ls, _ := leases.Leases6(context.Background())
	if len(ls) != 1 || ls[0].IP != ip || ls[0].MAC.String() != mac.String() || time.Until(ls[0].Expires) < time.Hour {
		t.Fatalf("leases = %+v", ls)
	}
}

func TestDHCPv6RapidCommitAndIPXE(t *testing.T) {
	mac := mustMAC("02:00:00:00:06:02")
	s, leases := unitServer6(t, Mode6Stateful, mapNodes{mac.String(): {Known: true, NetBoot: true}})
	sol := solicit6(t, mac, dhcpv6.WithRapidCommit, dhcpv6.WithUserClass([]byte("iPXE")))
	rep := msg6(t, handle6(t, s, sol, netip.Addr{}))
	if rep.Type() != dhcpv6.MessageTypeReply || rep.GetOneOption(dhcpv6.OptionRapidCommit) == nil {
		t.Fatalf("rapid-commit Solicit answered %v", rep.Summary())
	}
	if got, want := rep.Options.BootFileURL(), "http://[fd00:1::1]:8080/boot/02:00:00:00:06:02.ipxe"; got != want {
		t.Errorf("iPXE boot file URL = %q, want %q", got, want)
	}
	l, found, _ := leases.ByIP6(context.Background(), addrOf(t, rep))
	if !found || time.Until(l.Expires) < time.Hour {
		t.Fatalf("rapid commit did not commit a full lease: %+v %v", l, found)
	}
	// Without NetBoot: an address, no boot file.
	s2, _ := unitServer6(t, Mode6Stateful, mapNodes{mac.String(): {Known: true}}, func(c *Config6) { c.NoRapidCommit = true })
	adv := msg6(t, handle6(t, s2, sol, netip.Addr{}))
	if adv.Type() != dhcpv6.MessageTypeAdvertise || adv.Options.BootFileURL() != "" {
		t.Fatalf("NoRapidCommit / no net boot: %v", adv.Summary())
	}
}

func TestDHCPv6RenewRebindReleaseDecline(t *testing.T) {
	ctx := context.Background()
	mac := mustMAC("02:00:00:00:06:03")
	s, leases := unitServer6(t, Mode6Stateful, mapNodes{mac.String(): {Known: true}})
	sol := solicit6(t, mac, dhcpv6.WithRapidCommit)
	ip := addrOf(t, msg6(t, handle6(t, s, sol, netip.Addr{})))
	id := iaid(mac)

	// Renew: extended.
	before, _, _ := leases.ByIP6(ctx, ip)
	time.Sleep(2 * time.Millisecond)
	rep := msg6(t, handle6(t, s, msgFrom(sol, dhcpv6.MessageTypeRenew, srvDUID6, iaAddr(id, ip.String())), netip.Addr{}))
	after, _, _ := leases.ByIP6(ctx, ip)
	if addrOf(t, rep) != ip || !after.Expires.After(before.Expires) {
		t.Fatalf("renew: %v; expiry %v -> %v", rep.Summary(), before.Expires, after.Expires)
	}
	// Renew for another server: dropped. Renew of an unknown IA: NoBinding.
	other := (&dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: mustMAC("02:bb:00:00:00:01")}).ToBytes()
	if r := handle6(t, s, msgFrom(sol, dhcpv6.MessageTypeRenew, other, iaAddr(id, ip.String())), netip.Addr{}); r != nil {
		t.Fatalf("renew for another server answered: %v", r)
	}
	rep = msg6(t, handle6(t, s, msgFrom(sol, dhcpv6.MessageTypeRenew, srvDUID6, iaAddr([4]byte{9, 9, 9, 9}, ip.String())), netip.Addr{}))
	if iaStatus(rep) != iana.StatusNoBinding {
		t.Fatalf("renew of unknown IA: status %v", iaStatus(rep))
	}
	// Rebind of an address from another network: lifetimes 0.
	rep = msg6(t, handle6(t, s, msgFrom(sol, dhcpv6.MessageTypeRebind, nil, iaAddr([4]byte{9, 9, 9, 9}, "2001:db8::5")), netip.Addr{}))
	if a := rep.Options.OneIANA().Options.OneAddress(); a == nil || a.ValidLifetime != 0 || a.PreferredLifetime != 0 {
		t.Fatalf("rebind of foreign address: %v", rep.Summary())
	}
	// Rebind after the lease store lost the binding: the address is given back.
	if err := leases.DeleteLease6(ctx, clientKey(sol.Options.ClientID().ToBytes(), id)); err != nil {
		t.Fatal(err)
	}
	rep = msg6(t, handle6(t, s, msgFrom(sol, dhcpv6.MessageTypeRebind, nil, iaAddr(id, ip.String())), netip.Addr{}))
	if addrOf(t, rep) != ip {
		t.Fatalf("rebind after lost lease: %v", rep.Summary())
	}
	// Release: the lease is kept, expired.
	rep = msg6(t, handle6(t, s, msgFrom(sol, dhcpv6.MessageTypeRelease, srvDUID6, iaAddr(id, ip.String())), netip.Addr{}))
	if statusOf(rep) != iana.StatusSuccess {
		t.Fatalf("release: %v", rep.Summary())
	}
	if l, found, _ := leases.ByIP6(ctx, ip); !found || l.Active(time.Now()) {
		t.Fatalf("after release: %+v found %v", l, found)
	}
	// The client gets the same address back.
	if again := addrOf(t, msg6(t, handle6(t, s, sol, netip.Addr{}))); again != ip {
		t.Fatalf("after release got %v, want %v back", again, ip)
	}
	// Decline: the address is held back from everyone.
	rep = msg6(t, handle6(t, s, msgFrom(sol, dhcpv6.MessageTypeDecline, srvDUID6, iaAddr(id, ip.String())), netip.Addr{}))
	if statusOf(rep) != iana.StatusSuccess {
		t.Fatalf("decline: %v", rep.Summary())
	}
	if _, found, _ := leases.ByIP6(ctx, ip); found {
		t.Fatal("declined lease kept")
	}
	if again := addrOf(t, msg6(t, handle6(t, s, sol, netip.Addr{}))); again == ip {
		t.Fatalf("declined address %v given again", ip)
	}
}

func TestDHCPv6ConfirmAndInformationRequest(t *testing.T) {
	mac := mustMAC("02:00:00:00:06:04")
	nodes := mapNodes{mac.String(): {Known: true, NetBoot: true}}
	s, _ := unitServer6(t, Mode6Stateful, nodes)
	sol := solicit6(t, mac)
	id := iaid(mac)
	for _, tc := range []struct {
		ips  []string
		want iana.StatusCode
	}{{[]string{"fd00:1::100"}, iana.StatusSuccess}, {[]string{"fd00:1::100", "fd00:2::1"}, iana.StatusNotOnLink}} {
		rep := msg6(t, handle6(t, s, msgFrom(sol, dhcpv6.MessageTypeConfirm, nil, iaAddr(id, tc.ips...)), netip.Addr{}))
		if statusOf(rep) != tc.want {
			t.Errorf("confirm %v: status %v, want %v", tc.ips, statusOf(rep), tc.want)
		}
	}
	if r := handle6(t, s, msgFrom(sol, dhcpv6.MessageTypeConfirm, nil, iaAddr(id)), netip.Addr{}); r != nil {
		t.Errorf("confirm without addresses answered: %v", r)
	}

	st, _ := unitServer6(t, Mode6Stateless, nodes)
	ir := msgFrom(sol, dhcpv6.MessageTypeInformationRequest, nil, &dhcpv6.OptUserClass{UserClasses: [][]byte{[]byte("iPXE")}})
	rep := msg6(t, handle6(t, st, ir, netip.Addr{}))
	if rep.Type() != dhcpv6.MessageTypeReply || len(rep.Options.DNS()) != 1 || rep.Options.InformationRefreshTime(0) != time.Hour ||
		!strings.HasSuffix(rep.Options.BootFileURL(), "/boot/02:00:00:00:06:04.ipxe") {
		t.Fatalf("information-request: %v", rep.Summary())
	}
	// Stateless: a Solicit learns there are no addresses here.
	adv := msg6(t, handle6(t, st, sol, netip.Addr{}))
	if adv.Type() != dhcpv6.MessageTypeAdvertise || statusOf(adv) != iana.StatusNoAddrsAvail || adv.Options.OneIANA() != nil {
		t.Fatalf("stateless solicit: %v", adv.Summary())
	}
	if r := handle6(t, st, msgFrom(sol, dhcpv6.MessageTypeRequest, srvDUID6, iaAddr(id)), netip.Addr{}); r != nil {
		t.Fatalf("stateless request answered: %v", r)
	}
}

func TestDHCPv6ClientIdentification(t *testing.T) {
	mac := mustMAC("02:00:00:00:06:05")
	nodes := mapNodes{mac.String(): {Known: true, NetBoot: true}}
	s, leases := unitServer6(t, Mode6Stateful, nodes)
	// DUID-UUID (OVMF, iPXE): the MAC comes from the EUI-64 link-local source.
	uuid := &dhcpv6.DUIDUUID{UUID: [16]byte{1, 2, 3}}
	m := &dhcpv6.Message{MessageType: dhcpv6.MessageTypeSolicit, TransactionID: dhcpv6.TransactionID{4, 5, 6}}
	m.AddOption(dhcpv6.OptClientID(uuid))
	m.AddOption(&dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionRapidCommit})
	m.AddOption(iaAddr([4]byte{0, 0, 0, 1}))
	if r := handle6(t, s, m, netip.MustParseAddr("fe80::1")); r != nil {
		t.Fatalf("non-EUI-64 source, unknown DUID answered: %v", r)
	}
	rep := msg6(t, handle6(t, s, m, netip.MustParseAddr("fe80::ff:fe00:605%eth0")))
	ip := addrOf(t, rep)
	l, _, _ := leases.ByIP6(context.Background(), ip)
	if l.MAC.String() != mac.String() {
		t.Fatalf("lease MAC %v, want %v from the EUI-64 source", l.MAC, mac)
	}
	// Unknown MAC: ignored unless discovery is on.
	stranger := solicit6(t, mustMAC("02:00:00:00:0f:0f"))
	if r := handle6(t, s, stranger, netip.Addr{}); r != nil {
		t.Fatalf("unknown MAC answered: %v", r)
	}
	sd, _ := unitServer6(t, Mode6Stateful, nodes, func(c *Config6) { c.Discovery = true })
	if r := msg6(t, handle6(t, sd, solicit6(t, mustMAC("02:00:00:00:0f:0f"), dhcpv6.WithUserClass([]byte("iPXE"))), netip.Addr{})); !strings.HasSuffix(r.Options.BootFileURL(), "/boot/unknown.ipxe") {
		t.Fatalf("discovery: %v", r.Summary())
	}
}

func TestDHCPv6BadMessagesDropped(t *testing.T) {
	mac := mustMAC("02:00:00:00:06:06")
	s, _ := unitServer6(t, Mode6Stateful, mapNodes{mac.String(): {Known: true}})
	sol := solicit6(t, mac)
	noCID := &dhcpv6.Message{MessageType: dhcpv6.MessageTypeSolicit}
	for name, m := range map[string]dhcpv6.DHCPv6{
		"solicit with server ID":    msgFrom(sol, dhcpv6.MessageTypeSolicit, srvDUID6, iaAddr(iaid(mac))),
		"solicit without client ID": noCID,
		"request without server ID": msgFrom(sol, dhcpv6.MessageTypeRequest, nil, iaAddr(iaid(mac))),
		"advertise from a client":   msgFrom(sol, dhcpv6.MessageTypeAdvertise, srvDUID6),
		"reconfigure":               msgFrom(sol, dhcpv6.MessageTypeReconfigure, srvDUID6),
		"info-request with IA_NA":   msgFrom(sol, dhcpv6.MessageTypeInformationRequest, nil, iaAddr(iaid(mac))),
	} {
		if r := handle6(t, s, m, netip.Addr{}); r != nil {
			t.Errorf("%s: answered %v", name, r)
		}
	}
}

func TestDHCPv6RangeExhaustedAndHints(t *testing.T) {
	nodes := mapNodes{}
	for i := range 6 {
		nodes[net.HardwareAddr{2, 0, 0, 0, 7, byte(i)}.String()] = Client{Known: true}
	}
	s, _ := unitServer6(t, Mode6Stateful, nodes)
	seen := map[netip.Addr]bool{}
	for i := range 6 {
		mac := net.HardwareAddr{2, 0, 0, 0, 7, byte(i)}
		// Every client hints at an address outside the range: never given.
		rep := msg6(t, handle6(t, s, solicit6(t, mac, dhcpv6.WithRapidCommit, dhcpv6.WithIANA(dhcpv6.OptIAAddress{IPv6Addr: net.ParseIP("fd00:1::9999")})), netip.Addr{}))
		if i < 4 {
			ip := addrOf(t, rep)
			if !inRange6(s.cfg.Subnet6, ip) || seen[ip] {
				t.Fatalf("client %d got %v (seen %v)", i, ip, seen)
			}
			seen[ip] = true
			continue
		}
		if iaStatus(rep) != iana.StatusNoAddrsAvail {
			t.Fatalf("client %d with the range full: %v", i, rep.Summary())
		}
	}
}

func TestDHCPv6Relay(t *testing.T) {
	mac := mustMAC("02:00:00:00:06:07")
	s, leases := unitServer6(t, Mode6Stateful, mapNodes{mac.String(): {Known: true, NetBoot: true}})
	uuid := &dhcpv6.DUIDUUID{UUID: [16]byte{7}}
	inner := &dhcpv6.Message{MessageType: dhcpv6.MessageTypeSolicit, TransactionID: dhcpv6.TransactionID{7, 7, 7}}
	inner.AddOption(dhcpv6.OptClientID(uuid))
	inner.AddOption(&dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionRapidCommit})
	inner.AddOption(iaAddr([4]byte{0, 0, 0, 7}))
	inner.AddOption(&dhcpv6.OptUserClass{UserClasses: [][]byte{[]byte("iPXE")}})
	fw, err := dhcpv6.EncapsulateRelay(inner, dhcpv6.MessageTypeRelayForward, net.ParseIP("fd00:1::fe"), net.ParseIP("fe80::1234"))
	if err != nil {
		t.Fatal(err)
	}
	fw.AddOption(dhcpv6.OptClientLinkLayerAddress(iana.HWTypeEthernet, mac))
	fw.AddOption(dhcpv6.OptInterfaceID([]byte("rack1")))
	r := handle6(t, s, fw, netip.MustParseAddr("fd00:1::fe"))
	rr, ok := r.(*dhcpv6.RelayMessage)
	if !ok || rr.Type() != dhcpv6.MessageTypeRelayReply || string(rr.Options.InterfaceID()) != "rack1" || !rr.PeerAddr.Equal(net.ParseIP("fe80::1234")) {
		t.Fatalf("relay reply: %v", r)
	}
	in, err := rr.GetInnerMessage()
	if err != nil || in.Type() != dhcpv6.MessageTypeReply {
		t.Fatalf("inner: %v %v", in, err)
	}
	ls, _ := leases.Leases6(context.Background())
	if len(ls) != 1 || ls[0].MAC.String() != mac.String() {
		t.Fatalf("relayed lease: %+v", ls)
	}
	// From a link outside the prefix: dropped.
	fw2, _ := dhcpv6.EncapsulateRelay(inner, dhcpv6.MessageTypeRelayForward, net.ParseIP("fd00:9::fe"), net.ParseIP("fe80::1234"))
	fw2.AddOption(dhcpv6.OptClientLinkLayerAddress(iana.HWTypeEthernet, mac))
	if r := handle6(t, s, fw2, netip.Addr{}); r != nil {
		t.Fatalf("relay from unknown link answered: %v", r)
	}
	// Too deeply nested: dropped.
	var m dhcpv6.DHCPv6 = inner
	for range maxRelayHops + 1 {
		m, _ = dhcpv6.EncapsulateRelay(m, dhcpv6.MessageTypeRelayForward, net.ParseIP("fd00:1::fe"), net.ParseIP("fe80::1"))
	}
	if r := handle6(t, s, m, netip.Addr{}); r != nil {
		t.Fatalf("deep relay answered: %v", r)
	}
}

func TestSubnet6Validate(t *testing.T) {
	a := netip.MustParseAddr
	for _, tc := range []struct {
		name string
		sn   Subnet6
		want string // "" = valid
	}{
		{"stateful ok", Subnet6{Mode: Mode6Stateful, Prefix: prefix6, RangeStart: a("fd00:1::100"), RangeEnd: a("fd00:1::1ff")}, ""},
		{"stateless ok", Subnet6{Mode: Mode6Stateless, Prefix: prefix6}, ""},
		{"bad mode", Subnet6{Mode: "slaac", Prefix: prefix6}, "DHCPv6 mode"},
		{"ipv4 prefix", Subnet6{Mode: Mode6Stateless, Prefix: netip.MustParsePrefix("10.0.0.0/24")}, "want an IPv6 CIDR"},
		{"host bits", Subnet6{Mode: Mode6Stateless, Prefix: netip.MustParsePrefix("fd00:1::5/64")}, "host bits"},
		{"stateless not /64", Subnet6{Mode: Mode6Stateless, Prefix: netip.MustParsePrefix("fd00:1::/80")}, "needs a /64"},
		{"range outside", Subnet6{Mode: Mode6Stateful, Prefix: prefix6, RangeStart: a("fd00:2::1"), RangeEnd: a("fd00:2::9")}, "not inside the prefix"},
		{"range reversed", Subnet6{Mode: Mode6Stateful, Prefix: prefix6, RangeStart: a("fd00:1::9"), RangeEnd: a("fd00:1::1")}, "start is after end"},
		{"range missing", Subnet6{Mode: Mode6Stateful, Prefix: prefix6}, "both ends must be IPv6"},
		{"range ipv4", Subnet6{Mode: Mode6Stateful, Prefix: prefix6, RangeStart: a("10.0.0.1"), RangeEnd: a("10.0.0.2")}, "both ends must be IPv6"},
		{"range over /64", Subnet6{Mode: Mode6Stateful, Prefix: netip.MustParsePrefix("fd00::/48"), RangeStart: a("fd00:0:0:1::1"), RangeEnd: a("fd00:0:0:2::1")}, "more than one /64"},
		{"dns ipv4", Subnet6{Mode: Mode6Stateless, Prefix: prefix6, DNS: []netip.Addr{a("10.0.0.53")}}, "not IPv6"},
		{"link-local prefix", Subnet6{Mode: Mode6Stateless, Prefix: netip.MustParsePrefix("fe80::/64")}, "global or unique-local"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.sn.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
}

func TestDHCPv6StaticAddress(t *testing.T) {
	mac := mustMAC("02:00:00:00:06:08")
	s, _ := unitServer6(t, Mode6Stateful, mapNodes{mac.String(): {Known: true, StaticIP: net.ParseIP("fd00:1::50")}})
	if ip := addrOf(t, msg6(t, handle6(t, s, solicit6(t, mac, dhcpv6.WithRapidCommit), netip.Addr{}))); ip != netip.MustParseAddr("fd00:1::50") {
		t.Fatalf("static port got %v, want fd00:1::50", ip)
	}
	// An IPv4 static address (for DHCPv4) does not stop DHCPv6 from using the range.
	s4, _ := unitServer6(t, Mode6Stateful, mapNodes{mac.String(): {Known: true, StaticIP: net.IPv4(10, 0, 0, 9)}})
	if ip := addrOf(t, msg6(t, handle6(t, s4, solicit6(t, mac, dhcpv6.WithRapidCommit), netip.Addr{}))); !inRange6(s4.cfg.Subnet6, ip) {
		t.Fatalf("port with an IPv4 static address got %v", ip)
	}
}
