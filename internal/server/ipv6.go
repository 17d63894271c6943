package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/ironwork/ironwork/internal/dhcp"
	"github.com/ironwork/ironwork/internal/netns"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

// DHCP6Config is the IPv6 provisioning subnet ([dhcp6] in the config file): a DHCPv6
// server and router advertisements on the provisioning interface.
type DHCP6Config struct {
	// Mode is stateful (addresses from Range), stateless (SLAAC addresses, DHCPv6 for DNS
	// and the boot file URL) or empty for no DHCPv6.
	Mode string `toml:"mode"`
	// Prefix is the provisioning network's IPv6 prefix, e.g. fd00:1::/64; the provisioning
	// interface must have an address in it.
	Prefix string `toml:"prefix"`
	// Range is FIRST,LAST: the addresses stateful mode hands out (inside Prefix and one /64).
	Range string `toml:"range"`
	// DNS is a comma-separated list of IPv6 DNS servers (option 23).
	DNS string `toml:"dns"`
	// LeaseTime is the addresses' preferred lifetime (valid lifetime twice it); default 1h.
	LeaseTime Duration `toml:"lease_time"`
}

// enabled reports whether a DHCPv6 server is configured.
func (d DHCP6Config) enabled() bool { return d.Mode != "" && d.Mode != "off" }

// subnet converts the [dhcp6] table, naming each malformed value.
func (d DHCP6Config) subnet() (dhcp.Subnet6, []error) {
	var errs []error
	sn := dhcp.Subnet6{Mode: dhcp.Mode6(d.Mode)}
	p, err := netip.ParsePrefix(strings.TrimSpace(d.Prefix))
	if err != nil {
		errs = append(errs, fmt.Errorf("dhcp6.prefix: %q is not an IPv6 CIDR such as fd00:1::/64", d.Prefix))
	}
	sn.Prefix = p
	if d.Range != "" {
		a, b, ok := strings.Cut(d.Range, ",")
		first, err1 := netip.ParseAddr(strings.TrimSpace(a))
		last, err2 := netip.ParseAddr(strings.TrimSpace(b))
		if !ok || err1 != nil || err2 != nil {
			errs = append(errs, fmt.Errorf("dhcp6.range: %q is not FIRST,LAST with two IPv6 addresses", d.Range))
		} else {
			sn.RangeStart, sn.RangeEnd = first, last
		}
	} else if d.Mode == string(dhcp.Mode6Stateful) {
		errs = append(errs, errors.New("dhcp6.mode stateful needs dhcp6.range FIRST,LAST (or use mode stateless for SLAAC)"))
	}
	if d.Range != "" && d.Mode == string(dhcp.Mode6Stateless) {
		errs = append(errs, errors.New("dhcp6.range: stateless mode hands out no addresses (clients use SLAAC): remove it or use mode stateful"))
	}
	for _, v := range strings.Split(d.DNS, ",") {
		if v = strings.TrimSpace(v); v == "" {
			continue
		}
		ip, err := netip.ParseAddr(v)
		if err != nil || !ip.Is6() || ip.Is4In6() {
			errs = append(errs, fmt.Errorf("dhcp6.dns: %q is not an IPv6 address", v))
			continue
		}
		sn.DNS = append(sn.DNS, ip)
	}
	if len(errs) == 0 {
		if err := sn.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("dhcp6: %w", err))
		}
	}
	if d.LeaseTime.Duration != 0 && d.LeaseTime.Duration < time.Minute {
		errs = append(errs, errors.New("dhcp6.lease_time must be at least 1m"))
	}
	return sn, errs
}

// validateDHCP6 checks the [dhcp6] table.
func (c *Config) validateDHCP6() []error {
	if !c.DHCP6.enabled() {
		return nil
	}
	_, errs := c.DHCP6.subnet()
	if c.ProvisioningInterface == "" {
		errs = append(errs, errors.New("dhcp6 needs provisioning_interface"))
	}
	return errs
}

// interfaceIPv6 is the provisioning interface's first address inside prefix, looked up in
// its namespace.
func interfaceIPv6(ns, name string, prefix netip.Prefix) (net.IP, error) {
	return interfaceAddr(ns, name, "IPv6 address in "+prefix.String(), func(ip net.IP) bool {
		x, ok := netip.AddrFromSlice(ip)
		return ip.To4() == nil && ok && prefix.Contains(x)
	})
}

// provisioningAddr is the address nodes boot from: the interface's first IPv4 address, or,
// on an IPv6-only provisioning network ([dhcp6] set and no IPv4 address), its address in
// the IPv6 prefix. Every URL handed to nodes is built from it (IPv6 literals bracketed).
func provisioningAddr(cfg Config) (net.IP, error) {
	addr, err4 := interfaceIPv4(cfg.ProvisioningNetns, cfg.ProvisioningInterface)
	if err4 == nil || !cfg.DHCP6.enabled() {
		return addr, err4
	}
	sn, _ := cfg.DHCP6.subnet() // checked by Validate
	addr, err := interfaceIPv6(cfg.ProvisioningNetns, cfg.ProvisioningInterface, sn.Prefix)
	if err != nil {
		return nil, errors.Join(err4, err)
	}
	return addr, nil
}

// startDHCP6 makes the DHCPv6 server and the router advertiser for the [dhcp6] subnet.
func (b *bootServices) startDHCP6(ctx context.Context, cfg Config, nodes dhcp.Nodes, leases dhcp.Leases6, httpURL string, discovery bool, m bootMetrics, log *slog.Logger) error {
	sn, _ := cfg.DHCP6.subnet() // checked by Validate
	v6, err := interfaceIPv6(cfg.ProvisioningNetns, cfg.ProvisioningInterface, sn.Prefix)
	if err != nil {
		return fmt.Errorf("DHCPv6 server: %w", err)
	}
	// On a dual-stack network the boot file URL must name the server by an address an
	// IPv6 client reaches: the HTTP boot server listens there too (unless its address or
	// URL is set, which then is the operator's to make reachable).
	if host, port, _ := net.SplitHostPort(cfg.HTTPBootListen); b.addr.To4() != nil && cfg.HTTPBootURL == "" && host == "" {
		ln, err := netns.Listen(ctx, cfg.ProvisioningNetns, "tcp", net.JoinHostPort(v6.String(), port))
		if err != nil {
			return fmt.Errorf("HTTP boot server on IPv6: %w", err)
		}
		b.httpLn6 = ln
		httpURL = "http://" + net.JoinHostPort(v6.String(), port)
	}
	ip, _ := netip.AddrFromSlice(v6)
	dcfg := dhcp.Config6{Subnet6: sn, Interface: cfg.ProvisioningInterface, ServerIP: ip, HTTPBootURL: httpURL,
		PreferredLifetime: cfg.DHCP6.LeaseTime.Duration, Discovery: discovery, OnRequest: m.DHCPRequest}
	if err := netns.Do(cfg.ProvisioningNetns, func() error {
		var err error
		b.dhcp6, err = dhcp.New6(dcfg, nodes, leases, log)
		return err
	}); err != nil {
		return fmt.Errorf("DHCPv6 server: %w", err)
	}
	racfg := dhcp.RAConfig{Interface: cfg.ProvisioningInterface, Prefix: sn.Prefix, Other: true}
	if sn.Mode == dhcp.Mode6Stateful {
		racfg.Managed, racfg.NoAutonomous = true, true
	}
	if b.ra, err = dhcp.NewRouterAdvertiser(racfg, log); err != nil {
		return err
	}
	return nil
}

// serveDHCP6 runs the DHCPv6 server (when configured) with the other boot services.
func (b *bootServices) serveDHCP6(ctx context.Context, run func(name string, fatal bool, fn func() error)) {
	if b.httpLn6 != nil {
		run("HTTP boot server (IPv6)", true, func() error { return b.httpSrv.Serve(ctx, b.httpLn6) })
	}
	if b.dhcp6 != nil {
		run("DHCPv6 server", true, func() error { return netns.Do(b.cfg.ProvisioningNetns, func() error { return b.dhcp6.Serve(ctx) }) })
	}
}

// storeLeases6 keeps DHCPv6 leases in the database.
type storeLeases6 struct{ s *sqlstore.Store }

var _ dhcp.Leases6 = storeLeases6{}

func toLease6(l sqlstore.DHCP6Lease) dhcp.Lease6 {
	mac, _ := net.ParseMAC(l.MAC)
	ip, _ := netip.ParseAddr(l.IP)
	return dhcp.Lease6{Client: l.Client, MAC: mac, IP: ip, Expires: l.Expires}
}

func (s storeLeases6) Lease6(ctx context.Context, client string) (dhcp.Lease6, bool, error) {
	l, ok, err := s.s.Lease6(ctx, client)
	return toLease6(l), ok, err
}

func (s storeLeases6) ByIP6(ctx context.Context, ip netip.Addr) (dhcp.Lease6, bool, error) {
	l, ok, err := s.s.Lease6ByIP(ctx, ip.String())
	return toLease6(l), ok, err
}

func (s storeLeases6) PutLease6(ctx context.Context, l dhcp.Lease6) error {
	mac := ""
	if l.MAC != nil {
		mac = l.MAC.String()
	}
	err := s.s.PutLease6(ctx, sqlstore.DHCP6Lease{Client: l.Client, MAC: mac, IP: l.IP.String(), Expires: l.Expires})
	if errors.Is(err, sqlstore.ErrAddressInUse) {
		return fmt.Errorf("%w: %w", dhcp.ErrAddressInUse, err)
	}
	return err
}

func (s storeLeases6) DeleteLease6(ctx context.Context, client string) error {
	return s.s.DeleteLease6(ctx, client)
}

func (s storeLeases6) Leases6(ctx context.Context) ([]dhcp.Lease6, error) {
	ls, err := s.s.Leases6(ctx)
	out := make([]dhcp.Lease6, len(ls))
	for i, l := range ls {
		out[i] = toLease6(l)
	}
	return out, err
}

// dhcpMode is the DHCPv4 mode in force: off on an IPv6-only provisioning network.
func (b *bootServices) dhcpMode() string {
	if b.dhcpSrv == nil {
		return "off"
	}
	return b.cfg.DHCPMode
}
