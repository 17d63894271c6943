package initsys

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
)

func TestAPIFamily(t *testing.T) {
	for in, want := range map[string]Family{
		"http://[fd97::1]:6385":                    FamilyIPv6,
		"http://[fe80::1%25eth0]:6385":             FamilyIPv6,
		"https://[2001:db8::1]":                    FamilyIPv6,
		"http://10.98.0.1:6385":                    FamilyIPv4,
		"http://10.98.0.1:6385,http://[fd97::1]:1": FamilyIPv4, // IPA's list: the first is used
		"http://ironic.example:6385":               FamilyAny,
		"":                                         FamilyAny,
		"::not a url":                              FamilyAny,
	} {
		if got := APIFamily(in); got != want {
			t.Errorf("APIFamily(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestNetworkSettled(t *testing.T) {
	for _, tc := range []struct {
		need                           Family
		pending4, pending6, got4, got6 int
		want                           bool
	}{
		{FamilyIPv4, 0, 0, 1, 0, true},
		{FamilyIPv4, 1, 0, 1, 0, false},
		{FamilyIPv6, 0, 1, 2, 0, false}, // v4 done, v6 still trying: wait
		{FamilyIPv6, 1, 0, 0, 1, true},  // v6 done: DHCPv4 is not waited for
		{FamilyIPv6, 1, 0, 0, 0, true},  // v6 done without an address: settled (an error)
		{FamilyAny, 0, 2, 1, 0, true},   // a v4-only network does not wait for IPv6
		{FamilyAny, 2, 0, 0, 1, true},   // an IPv6-only network does not wait for DHCPv4
		{FamilyAny, 0, 1, 0, 0, false},  // v4 failed: wait for v6
		{FamilyAny, 1, 0, 0, 0, false},  // v6 failed: wait for v4
		{FamilyAny, 0, 0, 0, 0, true},
	} {
		if got := networkSettled(tc.need, tc.pending4, tc.pending6, tc.got4, tc.got6); got != tc.want {
			t.Errorf("%+v: settled %v", tc, got)
		}
	}
}

func TestEnableRA(t *testing.T) {
	dir := t.TempDir()
	if err := enableRA(dir, "eth0"); err == nil {
		t.Fatal("no error for a NIC without a sysctl directory")
	}
	if err := os.MkdirAll(filepath.Join(dir, "eth0"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := enableRA(dir, "eth0"); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"disable_ipv6": "0\n", "accept_ra": "2\n", "autoconf": "1\n"} {
		b, err := os.ReadFile(filepath.Join(dir, "eth0", k))
		if err != nil || string(b) != want {
			t.Errorf("%s = %q (%v), want %q", k, b, err, want)
		}
	}
}

// TestDHCPv6Messages: the Solicit and Request the agent sends parse as DHCPv6 and carry what
// a server needs (our transaction ids, DUID-LL, IA_NA, Rapid Commit, the DNS option asked).
func TestDHCPv6Messages(t *testing.T) {
	mac := net.HardwareAddr{0x52, 0x54, 0, 0xaa, 0xbb, 0xcc}
	xids := newXIDSource(mac, time.Unix(1e9, 0))
	x1 := xids.next6()
	sol, err := dhcpv6.MessageFromBytes(solicitMessage(x1, mac).ToBytes())
	if err != nil {
		t.Fatal(err)
	}
	if sol.MessageType != dhcpv6.MessageTypeSolicit || sol.TransactionID != x1 {
		t.Fatalf("solicit: type %s xid %v, want %v", sol.MessageType, sol.TransactionID, x1)
	}
	duid, ok := sol.Options.ClientID().(*dhcpv6.DUIDLL)
	if !ok || duid.LinkLayerAddr.String() != mac.String() {
		t.Fatalf("client id %v, want DUID-LL of %s", sol.Options.ClientID(), mac)
	}
	if ia := sol.Options.OneIANA(); ia == nil || ia.IaId != [4]byte{0, 0xaa, 0xbb, 0xcc} {
		t.Fatalf("IA_NA %v", ia)
	}
	if sol.GetOneOption(dhcpv6.OptionRapidCommit) == nil || !sol.IsOptionRequested(dhcpv6.OptionDNSRecursiveNameServer) {
		t.Fatalf("solicit lacks Rapid Commit or the DNS request: %s", sol.Summary())
	}
	addr := net.ParseIP("fd97::123")
	adv, err := dhcpv6.NewAdvertiseFromSolicit(sol, dhcpv6.WithServerID(&dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: net.HardwareAddr{2, 0, 0, 0, 0, 1}}),
		dhcpv6.WithIANA(dhcpv6.OptIAAddress{IPv6Addr: addr, PreferredLifetime: time.Hour, ValidLifetime: 2 * time.Hour}))
	if err != nil {
		t.Fatal(err)
	}
	x2 := xids.next6()
	if x2 == x1 {
		t.Fatal("two transactions with the same id")
	}
	req, err := requestMessage6(x2, sol, adv)
	if err != nil {
		t.Fatal(err)
	}
	req, err = dhcpv6.MessageFromBytes(req.ToBytes())
	if err != nil {
		t.Fatal(err)
	}
	if req.MessageType != dhcpv6.MessageTypeRequest || req.TransactionID != x2 || req.Options.ServerID() == nil ||
		!req.Options.ServerID().Equal(adv.Options.ServerID()) || req.Options.ClientID() == nil {
		t.Fatalf("request: %s", req.Summary())
	}
	if got, err := leasedAddress(adv); err != nil || !got.Equal(addr) {
		t.Fatalf("leased %v, %v; want %s", got, err, addr)
	}
	if _, err := requestMessage6(x2, sol, &dhcpv6.Message{MessageType: dhcpv6.MessageTypeAdvertise}); err == nil {
		t.Fatal("no error for an Advertise without a server id")
	}
}

// TestLeasedAddressRefuses: answers that lease nothing usable are errors that say why.
func TestLeasedAddressRefuses(t *testing.T) {
	withIA := func(opts ...dhcpv6.Option) *dhcpv6.Message {
		m := &dhcpv6.Message{MessageType: dhcpv6.MessageTypeReply}
		m.AddOption(&dhcpv6.OptIANA{Options: dhcpv6.IdentityOptions{Options: opts}})
		return m
	}
	noAddrs := &dhcpv6.Message{MessageType: dhcpv6.MessageTypeAdvertise}
	noAddrs.AddOption(&dhcpv6.OptStatusCode{StatusCode: iana.StatusNoAddrsAvail, StatusMessage: "none left"})
	for name, m := range map[string]*dhcpv6.Message{
		"no IA_NA":         {MessageType: dhcpv6.MessageTypeReply},
		"NoAddrsAvail":     noAddrs,
		"IA status":        withIA(&dhcpv6.OptStatusCode{StatusCode: iana.StatusNotOnLink}),
		"empty IA":         withIA(),
		"link-local":       withIA(&dhcpv6.OptIAAddress{IPv6Addr: net.ParseIP("fe80::5"), ValidLifetime: time.Hour}),
		"IPv4":             withIA(&dhcpv6.OptIAAddress{IPv6Addr: net.ParseIP("10.0.0.1"), ValidLifetime: time.Hour}),
		"valid lifetime 0": withIA(&dhcpv6.OptIAAddress{IPv6Addr: net.ParseIP("fd97::5")}),
	} {
		if ip, err := leasedAddress(m); !errors.Is(err, errNoAddress) {
			t.Errorf("%s: %v, %v; want errNoAddress", name, ip, err)
		}
	}
}

// FuzzLeasedAddress: any DHCPv6 answer read off the wire gives either a global IPv6 address
// or errNoAddress, never a panic.
func FuzzLeasedAddress(f *testing.F) {
	mac := net.HardwareAddr{0x52, 0x54, 0, 0xaa, 0xbb, 0xcc}
	sol := solicitMessage(dhcpv6.TransactionID{1, 2, 3}, mac)
	f.Add(sol.ToBytes())
	if adv, err := dhcpv6.NewAdvertiseFromSolicit(sol, dhcpv6.WithIANA(dhcpv6.OptIAAddress{IPv6Addr: net.ParseIP("fd97::5"), ValidLifetime: time.Hour})); err == nil {
		f.Add(adv.ToBytes())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := dhcpv6.MessageFromBytes(b)
		if err != nil {
			return
		}
		ip, err := leasedAddress(m)
		if err != nil {
			if !errors.Is(err, errNoAddress) {
				t.Fatalf("error %v is not errNoAddress", err)
			}
			return
		}
		if ip.To4() != nil || !ip.IsGlobalUnicast() {
			t.Fatalf("leased %s", ip)
		}
	})
}
