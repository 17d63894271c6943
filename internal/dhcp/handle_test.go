package dhcp

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

// staticNodes adds StaticOwners to mapNodes.
type staticNodes struct{ mapNodes }

func (s staticNodes) StaticOwner(_ context.Context, ip net.IP) (net.HardwareAddr, bool, error) {
	for mac, c := range s.mapNodes {
		if c.StaticIP.Equal(ip) {
			return mustMAC(mac), true, nil
		}
	}
	return nil, false, nil
}

func unitServer(t *testing.T, mode Mode, nodes Nodes, mutate ...func(*Config)) *Server {
	t.Helper()
	cfg := Config{
		Mode: mode, Interface: "unit0", ServerIP: net.IPv4(10, 0, 0, 1), Netmask: net.CIDRMask(24, 32),
		RangeStart: net.IPv4(10, 0, 0, 1), RangeEnd: net.IPv4(10, 0, 0, 4), HTTPBootURL: "http://10.0.0.1:8080/",
		LeaseTime: time.Hour, OfferHold: time.Minute,
	}
	for _, m := range mutate {
		m(&cfg)
	}
	s, err := New(cfg, nodes, NewMemoryLeases(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func discover(t *testing.T, mac net.HardwareAddr, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	d, err := dhcpv4.NewDiscovery(mac, mods...)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func request(t *testing.T, mac net.HardwareAddr, ip, server net.IP, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	m := []dhcpv4.Modifier{dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest), dhcpv4.WithHwAddr(mac),
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(ip))}
	if server != nil {
		m = append(m, dhcpv4.WithOption(dhcpv4.OptServerIdentifier(server)))
	}
	r, err := dhcpv4.New(append(m, mods...)...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func handle(t *testing.T, s *Server, req *dhcpv4.DHCPv4, port int) *dhcpv4.DHCPv4 {
	t.Helper()
	r, err := s.Handle(context.Background(), req, port)
	if err != nil {
		t.Fatalf("handle: %v", err)
	}
	return r
}

func TestBootFileTable(t *testing.T) {
	mac := mustMAC("02:00:00:00:00:01")
	nodes := mapNodes{mac.String(): {Known: true, NetBoot: true}}
	vc := func(s string) dhcpv4.Modifier { return dhcpv4.WithOption(dhcpv4.OptClassIdentifier(s)) }
	arch := func(a iana.Arch) dhcpv4.Modifier { return dhcpv4.WithOption(dhcpv4.OptClientArch(a)) }
	script := "http://10.0.0.1:8080/boot/02:00:00:00:00:01.ipxe"
	tests := []struct {
		name       string
		mods       []dhcpv4.Modifier
		file, vc60 string // file "" = no boot file
	}{
		{"bios", []dhcpv4.Modifier{vc("PXEClient:Arch:00000:UNDI:002001"), arch(iana.INTEL_X86PC)}, "undionly.kpxe", ""},
		{"bios-no-93", []dhcpv4.Modifier{vc("PXEClient:Arch:00000:UNDI:002001")}, "undionly.kpxe", ""},
		{"pxe-no-arch", []dhcpv4.Modifier{vc("PXEClient")}, "undionly.kpxe", ""},
		{"uefi-7", []dhcpv4.Modifier{vc("PXEClient:Arch:00007:UNDI:003016"), arch(iana.EFI_X86_64)}, "snponly.efi", ""},
		{"uefi-9", []dhcpv4.Modifier{vc("PXEClient:Arch:00009:UNDI:003016"), arch(iana.EFI_BC)}, "snponly.efi", ""},
		{"uefi-http-16", []dhcpv4.Modifier{vc("HTTPClient:Arch:00016:UNDI:003001"), arch(iana.EFI_X86_64_HTTP)}, "http://10.0.0.1:8080/ipxe.efi", "HTTPClient"},
		{"ipxe-user-class", []dhcpv4.Modifier{vc("PXEClient:Arch:00007:UNDI:003010"), arch(iana.EFI_X86_64), dhcpv4.WithUserClass("iPXE", false)}, script, ""},
		{"ipxe-175", []dhcpv4.Modifier{vc("PXEClient:Arch:00000:UNDI:002001"), dhcpv4.WithGeneric(optIPXEEncap, []byte{19, 1, 1})}, script, ""},
		{"arm64-11", []dhcpv4.Modifier{vc("PXEClient:Arch:00011:UNDI:003000"), arch(iana.EFI_ARM64)}, "grubnetaa64.efi", ""},
		{"arm64-11-no-93", []dhcpv4.Modifier{vc("PXEClient:Arch:00011:UNDI:003000")}, "grubnetaa64.efi", ""},
		{"arm64-http-19", []dhcpv4.Modifier{vc("HTTPClient:Arch:00019:UNDI:003000"), arch(iana.EFI_ARM64_HTTP)}, "http://10.0.0.1:8080/grubnetaa64.efi", "HTTPClient"},
		{"arm32-unsupported", []dhcpv4.Modifier{vc("PXEClient:Arch:00010:UNDI:003000"), arch(iana.EFI_ARM32)}, "", ""},
		{"not-pxe", []dhcpv4.Modifier{vc("udhcp 1.35.0")}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := unitServer(t, ModeFull, nodes)
			r := handle(t, s, discover(t, mac, tt.mods...), PortDHCP)
			if r == nil {
				t.Fatal("no offer")
			}
			got := struct{ File, Field, VC string }{r.BootFileNameOption(), r.BootFileName, r.ClassIdentifier()}
			want := struct{ File, Field, VC string }{tt.file, tt.file, tt.vc60}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("boot (-want +got):\n%s", d)
			}
			if got := r.Options.Get(optIPXEEncap); string(got) != "\xb0\x01\x01" {
				t.Errorf("option 175 = %x, want b00101", got)
			}
		})
	}
}

func TestAllocation(t *testing.T) {
	a, b, c := mustMAC("02:00:00:00:00:0a"), mustMAC("02:00:00:00:00:0b"), mustMAC("02:00:00:00:00:0c")
	st, other := mustMAC("02:00:00:00:00:05"), mustMAC("02:00:00:00:00:06")
	server := net.IPv4(10, 0, 0, 1).To4()
	ip := func(h byte) net.IP { return net.IPv4(10, 0, 0, h).To4() }
	known := mapNodes{a.String(): {Known: true}, b.String(): {Known: true}, c.String(): {Known: true},
		st.String(): {Known: true, StaticIP: ip(3)}, other.String(): {Known: true}}
	offerIP := func(t *testing.T, s *Server, mac net.HardwareAddr) net.IP {
		t.Helper()
		r := handle(t, s, discover(t, mac), PortDHCP)
		if r == nil {
			return nil
		}
		return r.YourIPAddr
	}
	dora := func(t *testing.T, s *Server, mac net.HardwareAddr) net.IP {
		t.Helper()
		got := offerIP(t, s, mac)
		if got == nil {
			t.Fatalf("%v: no offer", mac)
		}
		r := handle(t, s, request(t, mac, got, server), PortDHCP)
		if r == nil || r.MessageType() != dhcpv4.MessageTypeAck {
			t.Fatalf("%v: no ACK for %v: %v", mac, got, r)
		}
		return got
	}

	t.Run("never-the-server-ip-and-same-mac-same-ip", func(t *testing.T) {
		s := unitServer(t, ModeFull, known)
		if got := dora(t, s, a); !got.Equal(ip(2)) {
			t.Fatalf("first address %v, want 10.0.0.2 (10.0.0.1 is the server)", got)
		}
		if got := dora(t, s, a); !got.Equal(ip(2)) {
			t.Errorf("renewal moved the MAC to %v", got)
		}
	})
	t.Run("request-wrong-or-taken-address-is-naked", func(t *testing.T) {
		s := unitServer(t, ModeFull, known)
		dora(t, s, a)
		for _, addr := range []net.IP{ip(2) /* a's */, ip(200) /* out of range */, net.IPv4(192, 0, 2, 1) /* other net */} {
			r := handle(t, s, request(t, b, addr, nil), PortDHCP)
			if r == nil || r.MessageType() != dhcpv4.MessageTypeNak {
				t.Errorf("REQUEST %v by another MAC: %v, want NAK", addr, r)
			}
		}
	})
	t.Run("request-for-other-server-ignored", func(t *testing.T) {
		s := unitServer(t, ModeFull, known)
		if r := handle(t, s, request(t, a, ip(2), net.IPv4(10, 0, 0, 99)), PortDHCP); r != nil {
			t.Errorf("answered a REQUEST meant for another server: %v", r)
		}
	})
	t.Run("decline-holds-address-back", func(t *testing.T) {
		s := unitServer(t, ModeFull, known)
		got := offerIP(t, s, a)
		decl, _ := dhcpv4.New(dhcpv4.WithMessageType(dhcpv4.MessageTypeDecline), dhcpv4.WithHwAddr(a),
			dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(got)), dhcpv4.WithOption(dhcpv4.OptServerIdentifier(server)))
		if r := handle(t, s, decl, PortDHCP); r != nil {
			t.Errorf("DECLINE answered: %v", r)
		}
		for _, m := range []net.HardwareAddr{a, b} {
			if again := offerIP(t, s, m); again.Equal(got) {
				t.Errorf("declined %v offered again to %v", got, m)
			}
		}
	})
	t.Run("release-frees-and-expired-is-reused", func(t *testing.T) {
		s := unitServer(t, ModeFull, known, func(c *Config) { c.RangeStart, c.RangeEnd = ip(2), ip(2) })
		got := dora(t, s, a)
		if o := offerIP(t, s, b); o != nil {
			t.Fatalf("full range offered %v to a second MAC", o)
		}
		rel, _ := dhcpv4.New(dhcpv4.WithMessageType(dhcpv4.MessageTypeRelease), dhcpv4.WithHwAddr(a),
			dhcpv4.WithClientIP(got), dhcpv4.WithOption(dhcpv4.OptServerIdentifier(server)))
		handle(t, s, rel, PortDHCP)
		if o := dora(t, s, b); !o.Equal(got) {
			t.Fatalf("released %v not reused, got %v", got, o)
		}
		// b's lease expires: a takes the address back, b's record goes.
		l, _, _ := s.leases.Lease(context.Background(), "10.0.0.0/24", b)
		l.Expires = time.Now().Add(-time.Second)
		if err := s.leases.PutLease(context.Background(), l); err != nil {
			t.Fatal(err)
		}
		if o := dora(t, s, a); !o.Equal(got) {
			t.Fatalf("expired %v not reused, got %v", got, o)
		}
		if _, found, _ := s.leases.Lease(context.Background(), "10.0.0.0/24", b); found {
			t.Error("expired lease of the previous holder not deleted")
		}
	})
	t.Run("static-always-and-only-to-owner", func(t *testing.T) {
		s := unitServer(t, ModeFull, staticNodes{known}, func(c *Config) { c.RangeEnd = ip(5) })
		for _, m := range []net.HardwareAddr{a, b, other} {
			if got := dora(t, s, m); got.Equal(ip(3)) {
				t.Errorf("%v got the static address of another port", m)
			}
		}
		if got := dora(t, s, st); !got.Equal(ip(3)) {
			t.Errorf("static port got %v, want 10.0.0.3", got)
		}
		if r := handle(t, s, request(t, st, ip(4), nil), PortDHCP); r == nil || r.MessageType() != dhcpv4.MessageTypeNak {
			t.Errorf("static port asking for another address: %v, want NAK", r)
		}
	})
	t.Run("unknown-ignored-discovery-served", func(t *testing.T) {
		unknown := mustMAC("02:00:00:00:00:ff")
		if r := handle(t, unitServer(t, ModeFull, known), discover(t, unknown), PortDHCP); r != nil {
			t.Errorf("unknown MAC answered: %v", r)
		}
		s := unitServer(t, ModeFull, known, func(c *Config) { c.Discovery = true })
		r := handle(t, s, discover(t, unknown, dhcpv4.WithUserClass("iPXE", false)), PortDHCP)
		if r == nil || r.BootFileNameOption() != "http://10.0.0.1:8080/boot/unknown.ipxe" {
			t.Errorf("discovery: %v", r)
		}
	})
	t.Run("relayed-only-when-allowed", func(t *testing.T) {
		relayed := discover(t, a, dhcpv4.WithGatewayIP(ip(250)))
		if r := handle(t, unitServer(t, ModeFull, known), relayed, PortDHCP); r != nil {
			t.Errorf("relayed request answered with Relayed off: %v", r)
		}
		s := unitServer(t, ModeFull, known, func(c *Config) { c.Relayed = true })
		if r := handle(t, s, discover(t, a, dhcpv4.WithGatewayIP(net.IPv4(192, 0, 2, 1))), PortDHCP); r != nil {
			t.Errorf("relay outside the subnet answered: %v", r)
		}
		if r := handle(t, s, relayed, PortDHCP); r == nil || !r.GatewayIPAddr.Equal(ip(250)) {
			t.Errorf("relayed request in subnet: %v", r)
		}
	})
}

func TestProxyNeverLeasesOrNaks(t *testing.T) {
	mac := mustMAC("02:00:00:00:00:01")
	s := unitServer(t, ModeProxy, mapNodes{mac.String(): {Known: true, NetBoot: true}})
	pxe := dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00000:UNDI:002001"))
	if r := handle(t, s, request(t, mac, net.IPv4(10, 0, 0, 77), nil, pxe), PortDHCP); r != nil {
		t.Errorf("proxy answered a port-67 REQUEST: %v", r)
	}
	if r := handle(t, s, discover(t, mac), PortDHCP); r != nil {
		t.Errorf("proxy answered a non-PXE DISCOVER: %v", r)
	}
	r := handle(t, s, discover(t, mac, pxe), PortDHCP)
	if r == nil || !r.YourIPAddr.IsUnspecified() || r.BootFileNameOption() != "undionly.kpxe" {
		t.Errorf("proxy offer: %v", r)
	}
	known := mapNodes{mac.String(): {Known: true, NetBoot: false}}
	if r := handle(t, unitServer(t, ModeProxy, known), discover(t, mac, pxe), PortDHCP); r != nil {
		t.Errorf("proxy answered a node that must not net-boot: %v", r)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Config{Mode: ModeFull, Interface: "x", RangeStart: net.IPv4(10, 0, 0, 2), RangeEnd: net.IPv4(10, 0, 0, 9), HTTPBootURL: "http://h"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	if err := (Config{Mode: ModeOff}).Validate(); err != nil {
		t.Errorf("off: %v", err)
	}
	bad := map[string]func(*Config){
		"mode":        func(c *Config) { c.Mode = "fast" },
		"interface":   func(c *Config) { c.Interface = "" },
		"range-order": func(c *Config) { c.RangeStart, c.RangeEnd = c.RangeEnd, c.RangeStart },
		"range-v6":    func(c *Config) { c.RangeStart = net.ParseIP("fd00::1") },
		"url":         func(c *Config) { c.HTTPBootURL = "ftp://h" },
		"netmask":     func(c *Config) { c.Netmask = net.IPMask{255, 0, 255, 0} },
	}
	for name, mut := range bad {
		c := ok
		mut(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	s, err := New(Config{Mode: ModeOff}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(context.Background()); err != nil {
		t.Errorf("off: Serve = %v", err)
	}
	c := ok
	c.ServerIP, c.Netmask = net.IPv4(10, 0, 1, 1), net.CIDRMask(24, 32)
	if _, err := New(c, mapNodes{}, NewMemoryLeases(), nil); err == nil {
		t.Error("range outside the subnet accepted")
	}
}
