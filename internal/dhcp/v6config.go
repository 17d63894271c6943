package dhcp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// Mode6 says how the DHCPv6 server gives clients their addresses.
type Mode6 string

// DHCPv6 modes.
const (
	// Mode6Stateful hands out addresses (IA_NA) from a range and keeps leases;
	// router advertisements carry the Managed flag.
	Mode6Stateful Mode6 = "stateful"
	// Mode6Stateless answers only Information-request (DNS, boot file URL):
	// clients take SLAAC addresses from the advertised prefix; router
	// advertisements carry the Other flag and an autonomous prefix.
	Mode6Stateless Mode6 = "stateless"
)

// DHCPv6 defaults.
const (
	DefaultPreferredLifetime6 = time.Hour
	DefaultValidLifetime6     = 2 * time.Hour
	DefaultInfoRefresh6       = time.Hour
)

// Subnet6 is the IPv6 provisioning network: its prefix and, in stateful
// mode, the addresses handed out.
type Subnet6 struct {
	Mode   Mode6
	Prefix netip.Prefix
	// RangeStart..RangeEnd (inclusive), stateful mode: inside Prefix and
	// inside one /64.
	RangeStart, RangeEnd netip.Addr
	DNS                  []netip.Addr
}

// Validate names every problem of s.
func (s Subnet6) Validate() error {
	var errs []error
	switch s.Mode {
	case Mode6Stateful, Mode6Stateless:
	default:
		errs = append(errs, fmt.Errorf("DHCPv6 mode %q: want %q or %q", s.Mode, Mode6Stateful, Mode6Stateless))
	}
	p := s.Prefix
	switch {
	case !p.IsValid() || !p.Addr().Is6() || p.Addr().Is4In6():
		errs = append(errs, fmt.Errorf("IPv6 prefix %v: want an IPv6 CIDR such as fd00:1::/64", s.Prefix))
		return errors.Join(errs...)
	case p.Masked() != p:
		errs = append(errs, fmt.Errorf("IPv6 prefix %v has host bits set (did you mean %v?)", p, p.Masked()))
	case p.Addr().IsLinkLocalUnicast() || p.Addr().IsMulticast() || p.Addr().IsLoopback():
		errs = append(errs, fmt.Errorf("IPv6 prefix %v: want a global or unique-local prefix", p))
	}
	if s.Mode == Mode6Stateless && p.Bits() != 64 {
		errs = append(errs, fmt.Errorf("IPv6 prefix %v: stateless mode (SLAAC) needs a /64", p))
	}
	if p.Bits() > 120 {
		errs = append(errs, fmt.Errorf("IPv6 prefix %v: at most /120", p))
	}
	for _, d := range s.DNS {
		if !d.Is6() || d.Is4In6() {
			errs = append(errs, fmt.Errorf("IPv6 DNS server %v is not IPv6", d))
		}
	}
	if s.Mode == Mode6Stateful {
		a, b := s.RangeStart, s.RangeEnd
		switch {
		case !a.Is6() || !b.Is6() || a.Is4In6() || b.Is4In6():
			errs = append(errs, fmt.Errorf("IPv6 range %v..%v: both ends must be IPv6 (stateful mode hands out addresses)", a, b))
		case a.Compare(b) > 0:
			errs = append(errs, fmt.Errorf("IPv6 range %v..%v: start is after end", a, b))
		case !p.Contains(a.WithZone("")) || !p.Contains(b.WithZone("")):
			errs = append(errs, fmt.Errorf("IPv6 range %v..%v is not inside the prefix %v", a, b, p))
		case hi64(a) != hi64(b):
			errs = append(errs, fmt.Errorf("IPv6 range %v..%v spans more than one /64", a, b))
		case lo64(a) == 0 && p.Bits() <= 64:
			errs = append(errs, fmt.Errorf("IPv6 range %v..%v holds the subnet-router anycast address %v", a, b, a))
		}
	}
	return errors.Join(errs...)
}

// Config6 configures a Server6.
type Config6 struct {
	Subnet6
	Interface string
	// ServerIP is the server's address on the network; it is never handed
	// out. Default: the interface's first address inside Prefix.
	ServerIP netip.Addr
	// ServerDUID is the server identifier; default a DUID-LL of the
	// interface's MAC address.
	ServerDUID []byte
	// PreferredLifetime and ValidLifetime of the addresses handed out; T1
	// and T2 are 1/2 and 4/5 of PreferredLifetime.
	PreferredLifetime, ValidLifetime time.Duration
	// InfoRefresh is option 32 of replies to Information-request.
	InfoRefresh time.Duration
	// OfferHold keeps an advertised address for its client; DeclineHold
	// keeps a declined address out of use. Defaults as for DHCPv4.
	OfferHold, DeclineHold time.Duration
	// NoRapidCommit answers a Solicit with Rapid Commit by an Advertise
	// (two round trips) instead of a Reply.
	NoRapidCommit bool

	// HTTPBootURL is the HTTP boot server as IPv6 clients reach it, e.g.
	// "http://[fd00:1::1]:8080"; UEFI HTTP clients get HTTPBootURL + "/" +
	// HTTPBootFile, iPXE gets ScriptURL.
	HTTPBootURL  string
	HTTPBootFile string
	ScriptURL    func(mac net.HardwareAddr, c Client) string
	// Discovery serves unknown clients (address and the discovery script).
	Discovery bool
	// Relayed answers Relay-forward messages whose link address lies in
	// Prefix (a relay on the provisioning network's router).
	Relayed bool
	Workers int
	// OnRequest is called once per decoded request, as in Config.
	OnRequest func(msgType string, answered bool)
}

// Validate reports what is wrong with c before defaults are applied.
func (c Config6) Validate() error {
	var errs []error
	if err := c.Subnet6.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Interface == "" {
		errs = append(errs, errors.New("interface is required"))
	}
	if c.ServerIP.IsValid() && (!c.ServerIP.Is6() || c.ServerIP.Is4In6()) {
		errs = append(errs, fmt.Errorf("server IP %v is not IPv6", c.ServerIP))
	}
	if c.PreferredLifetime < 0 || c.ValidLifetime < 0 || c.InfoRefresh < 0 || c.OfferHold < 0 || c.DeclineHold < 0 {
		errs = append(errs, errors.New("lifetimes and holds must not be negative"))
	}
	if c.PreferredLifetime > 0 && c.ValidLifetime > 0 && c.PreferredLifetime > c.ValidLifetime {
		errs = append(errs, fmt.Errorf("preferred lifetime %v is longer than valid lifetime %v", c.PreferredLifetime, c.ValidLifetime))
	}
	if c.HTTPBootURL == "" {
		errs = append(errs, errors.New("HTTP boot URL is required"))
	} else if u, err := url.Parse(c.HTTPBootURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("HTTP boot URL %q: want http(s)://host[:port][/path] (IPv6 literals in brackets)", c.HTTPBootURL))
	}
	if c.Workers < 0 {
		errs = append(errs, errors.New("workers must not be negative"))
	}
	return errors.Join(errs...)
}

func (c Config6) withDefaults() Config6 {
	if c.PreferredLifetime == 0 {
		c.PreferredLifetime = DefaultPreferredLifetime6
	}
	if c.ValidLifetime == 0 {
		c.ValidLifetime = max(DefaultValidLifetime6, c.PreferredLifetime)
	}
	if c.InfoRefresh == 0 {
		c.InfoRefresh = DefaultInfoRefresh6
	}
	if c.OfferHold == 0 {
		c.OfferHold = DefaultOfferHold
	}
	if c.DeclineHold == 0 {
		c.DeclineHold = DefaultDeclineHold
	}
	if c.HTTPBootFile == "" {
		c.HTTPBootFile = DefaultHTTPBootFile
	}
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	c.HTTPBootURL = strings.TrimRight(c.HTTPBootURL, "/")
	if c.ScriptURL == nil {
		c.ScriptURL = scriptURLs(c.HTTPBootURL)
	}
	return c
}

// hi64 and lo64 are the halves of an IPv6 address.
func hi64(a netip.Addr) uint64 {
	b := a.As16()
	return be64(b[:8])
}

func lo64(a netip.Addr) uint64 {
	b := a.As16()
	return be64(b[8:])
}

func be64(b []byte) uint64 {
	var v uint64
	for _, x := range b {
		v = v<<8 | uint64(x)
	}
	return v
}

// withLo64 is a with its low 64 bits set to v.
func withLo64(a netip.Addr, v uint64) netip.Addr {
	b := a.As16()
	for i := 15; i >= 8; i-- {
		b[i] = byte(v)
		v >>= 8
	}
	return netip.AddrFrom16(b)
}
