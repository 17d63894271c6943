package initsys

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/dhcpv6/nclient6"
	"github.com/insomniacslk/dhcp/iana"
	"github.com/insomniacslk/dhcp/netboot"
	"github.com/jsimonetti/rtnetlink/rtnl"
	"golang.org/x/sys/unix"
)

// Family is the address family the agent needs to reach the Ironic API.
type Family int

const (
	FamilyAny  Family = iota // a host name (or no URL): either family will do
	FamilyIPv4               // an IPv4 literal: DHCPv4 must give a lease; IPv6 is not started
	FamilyIPv6               // an IPv6 literal: IPv6 must come up; DHCPv4 may fail
)

func (f Family) String() string {
	return [...]string{"any", "ipv4", "ipv6"}[f]
}

// APIFamily is the family of the host of apiURL (ipa-api-url): an IP literal names its
// family, anything else (a host name, a URL that does not parse) is FamilyAny.
func APIFamily(apiURL string) Family {
	first, _, _ := strings.Cut(apiURL, ",")
	u, err := url.Parse(first)
	if err != nil {
		return FamilyAny
	}
	host := u.Hostname()
	if h, _, ok := strings.Cut(host, "%"); ok { // a zone
		host = h
	}
	ip := net.ParseIP(host)
	switch {
	case ip == nil:
		return FamilyAny
	case ip.To4() != nil:
		return FamilyIPv4
	}
	return FamilyIPv6
}

// Lease sources.
const (
	SourceDHCPv4 = "dhcpv4"
	SourceDHCPv6 = "dhcpv6"
	SourceSLAAC  = "slaac"
)

// v6Keeper brings IPv6 up on one NIC: router advertisements (SLAAC, the on-link prefix, a
// default route when the router offers one, all done by the kernel) and a DHCPv6 client for
// stateful networks. One goroutine owns it.
type v6Keeper struct {
	nic  net.Interface
	cfg  NetworkConfig
	log  *slog.Logger
	dns  *routeOwner // who writes resolv.conf from DHCPv6
	xids *xidSource
}

// ipv6Sysctls are written on the NIC before its link comes up: IPv6 on, router
// advertisements accepted even if forwarding were on (2), addresses autoconfigured from them.
var ipv6Sysctls = [][2]string{{"disable_ipv6", "0"}, {"accept_ra", "2"}, {"autoconf", "1"}}

// enableRA writes ipv6Sysctls for nic under dir (/proc/sys/net/ipv6/conf).
func enableRA(dir, nic string) error {
	for _, kv := range ipv6Sysctls {
		p := filepath.Join(dir, nic, kv[0])
		if err := os.WriteFile(p, []byte(kv[1]+"\n"), 0o644); err != nil {
			return fmt.Errorf("set %s: %w", p, err)
		}
	}
	return nil
}

// v6Result is the first global address the NIC got.
type v6Result struct {
	lease Lease
	err   error
}

// start enables router advertisements, brings the link up and waits, within cfg.DHCPWait,
// for the first usable (DAD done) global address: one the kernel made from an RA (SLAAC), or
// one leased over DHCPv6 (stateful), whichever comes first.
func (k *v6Keeper) start(ctx context.Context) (Lease, error) {
	dir := k.cfg.IPv6Sysctl
	if dir == "" {
		dir = "/proc/sys/net/ipv6/conf"
	}
	if err := enableRA(dir, k.nic.Name); err != nil {
		return Lease{}, fmt.Errorf("ipv6: %w", err)
	}
	if _, err := netboot.IfUp(k.nic.Name, k.cfg.LinkWait); err != nil {
		return Lease{}, fmt.Errorf("link up: %w", err)
	}
	began := time.Now()
	ctx, cancel := context.WithTimeout(ctx, k.cfg.DHCPWait)
	defer cancel()
	got := make(chan v6Result, 2)
	go func() { // DHCPv6
		l, err := k.dhcpv6(ctx)
		got <- v6Result{l, err}
	}()
	go func() { // SLAAC
		l, err := k.slaac(ctx)
		got <- v6Result{l, err}
	}()
	var errs []error
	for range 2 {
		r := <-got
		if r.err == nil {
			cancel()
			k.log.Info("ipv6 address", "source", r.lease.Source, logKeyAddr, r.lease.Addr.String(), "server", r.lease.Server,
				"took", time.Since(began).Round(time.Millisecond).String())
			return r.lease, nil
		}
		errs = append(errs, r.err)
	}
	return Lease{}, fmt.Errorf("ipv6: no address within %s: %w", k.cfg.DHCPWait, errors.Join(errs...))
}

// slaac waits for a global address on the NIC that DAD has accepted.
func (k *v6Keeper) slaac(ctx context.Context) (Lease, error) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		addrs, err := ipv6Addrs(k.nic.Index)
		if err != nil {
			return Lease{}, fmt.Errorf("slaac: %w", err)
		}
		for _, a := range addrs {
			if a.global && !a.tentative && a.prefix < 128 {
				return Lease{NIC: k.nic.Name, MAC: k.nic.HardwareAddr.String(), Addr: a.net, Source: SourceSLAAC}, nil
			}
		}
		select {
		case <-ctx.Done():
			return Lease{}, fmt.Errorf("slaac: no autoconfigured address: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// ifAddr6 is one IPv6 address of a NIC, from the kernel.
type ifAddr6 struct {
	net       net.IPNet
	prefix    int
	global    bool
	tentative bool // DAD not done (or failed): not usable as a source yet
}

// ipv6Addrs lists the IPv6 addresses of the NIC with index idx.
func ipv6Addrs(idx int) ([]ifAddr6, error) {
	rt, err := rtnl.Dial(nil)
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	defer rt.Close()
	msgs, err := rt.Conn.Address.List()
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	var out []ifAddr6
	for _, m := range msgs {
		if m.Family != unix.AF_INET6 || int(m.Index) != idx || m.Attributes == nil {
			continue
		}
		ip := m.Attributes.Address
		flags := uint32(m.Flags)
		if m.Attributes.Flags != 0 {
			flags = m.Attributes.Flags
		}
		out = append(out, ifAddr6{
			net:       net.IPNet{IP: ip, Mask: net.CIDRMask(int(m.PrefixLength), 128)},
			prefix:    int(m.PrefixLength),
			global:    ip.IsGlobalUnicast() && !ip.IsLinkLocalUnicast(),
			tentative: flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) != 0,
		})
	}
	return out, nil
}

// dhcpv6 leases an address over DHCPv6 (Solicit with Rapid Commit, else Advertise, Request,
// Reply), adds it to the NIC as a /128 (the on-link prefix comes from the RA), writes
// resolv.conf from option 23 when nobody wrote it, and waits for DAD and for a route from an
// RA.
func (k *v6Keeper) dhcpv6(ctx context.Context) (Lease, error) {
	var c *nclient6.Client
	for c == nil { // binding needs the link-local address, which is tentative for a second
		var err error
		if c, err = nclient6.New(k.nic.Name, nclient6.WithTimeout(2*time.Second), nclient6.WithRetry(2)); err != nil {
			select {
			case <-ctx.Done():
				return Lease{}, fmt.Errorf("dhcpv6 client: %w", err)
			case <-time.After(250 * time.Millisecond):
			}
		}
	}
	defer c.Close()
	var (
		reply *dhcpv6.Message
		err   error
	)
	for {
		if reply, err = k.exchange(ctx, c); err == nil {
			break
		}
		if ctx.Err() != nil {
			return Lease{}, fmt.Errorf("dhcpv6: %w", err)
		}
		k.log.Debug("no DHCPv6 lease yet", logKeyError, err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	addr, err := leasedAddress(reply)
	if err != nil {
		return Lease{}, err
	}
	ipn := net.IPNet{IP: addr, Mask: net.CIDRMask(128, 128)}
	if err := addAddr(&k.nic, &ipn); err != nil {
		return Lease{}, err
	}
	if dns := reply.Options.DNS(); len(dns) > 0 && k.cfg.ResolvConf != "" && k.dns.claim(k.nic.Name+"/v6") {
		var b strings.Builder
		for _, ns := range dns {
			fmt.Fprintf(&b, "nameserver %s\n", ns)
		}
		if err := os.WriteFile(k.cfg.ResolvConf, []byte(b.String()), 0o644); err != nil {
			return Lease{}, fmt.Errorf("write %s: %w", k.cfg.ResolvConf, err)
		}
	}
	if err := k.awaitDAD(ctx, addr); err != nil {
		return Lease{}, err
	}
	// The /128 reaches nobody until a router advertisement gave the on-link prefix (or a
	// default route); the lease may come before the RA.
	if err := k.awaitRA(ctx, addr); err != nil {
		return Lease{}, err
	}
	return Lease{NIC: k.nic.Name, MAC: k.nic.HardwareAddr.String(), Addr: ipn, Source: SourceDHCPv6}, nil
}

// exchange runs one Solicit (Rapid Commit) and, when the server answers Advertise, Request.
func (k *v6Keeper) exchange(ctx context.Context, c *nclient6.Client) (*dhcpv6.Message, error) {
	sol := solicitMessage(k.xids.next6(), k.nic.HardwareAddr)
	resp, err := c.SendAndRead(ctx, c.RemoteAddr(), sol, nclient6.IsMessageType(dhcpv6.MessageTypeAdvertise, dhcpv6.MessageTypeReply))
	if err != nil {
		return nil, fmt.Errorf("solicit: %w", err)
	}
	if resp.MessageType == dhcpv6.MessageTypeReply {
		return resp, nil
	}
	if _, err := leasedAddress(resp); err != nil { // an Advertise without an address: stateless
		return nil, fmt.Errorf("advertise: %w", err)
	}
	req, err := requestMessage6(k.xids.next6(), sol, resp)
	if err != nil {
		return nil, err
	}
	reply, err := c.SendAndRead(ctx, c.RemoteAddr(), req, nclient6.IsMessageType(dhcpv6.MessageTypeReply))
	if err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	return reply, nil
}

// awaitDAD waits until addr is no longer tentative on the NIC.
func (k *v6Keeper) awaitDAD(ctx context.Context, addr net.IP) error {
	for {
		addrs, err := ipv6Addrs(k.nic.Index)
		if err != nil {
			return err
		}
		for _, a := range addrs {
			if a.net.IP.Equal(addr) && !a.tentative {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("duplicate address detection of %s: %w", addr, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// awaitRA waits until the kernel has a route on the NIC, in the main table, that makes addr
// useful: an on-link prefix holding it, or a default route (both come from router
// advertisements on a provisioning network; the RA may come after the DHCPv6 lease).
func (k *v6Keeper) awaitRA(ctx context.Context, addr net.IP) error {
	for {
		ok, err := usableRoute(k.nic.Index, addr)
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("dhcpv6 lease %s, but no on-link prefix or default route from a router advertisement: %w", addr, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// usableRoute reports whether a main-table IPv6 route through the NIC with index idx is a
// prefix (shorter than /128) holding addr, or a default route.
func usableRoute(idx int, addr net.IP) (bool, error) {
	rt, err := rtnl.Dial(nil)
	if err != nil {
		return false, fmt.Errorf("netlink: %w", err)
	}
	defer rt.Close()
	msgs, err := rt.Conn.Route.List()
	if err != nil {
		return false, fmt.Errorf("list routes: %w", err)
	}
	for _, m := range msgs {
		table := uint32(m.Table)
		if m.Attributes.Table != 0 {
			table = m.Attributes.Table
		}
		if m.Family != unix.AF_INET6 || table != unix.RT_TABLE_MAIN || int(m.Attributes.OutIface) != idx || m.DstLength >= 128 {
			continue
		}
		if m.DstLength == 0 {
			return true, nil
		}
		dst := net.IPNet{IP: m.Attributes.Dst, Mask: net.CIDRMask(int(m.DstLength), 128)}
		if m.Attributes.Dst != nil && dst.Contains(addr) {
			return true, nil
		}
	}
	return false, nil
}

// addAddr adds ipn to ifc (already there is fine).
func addAddr(ifc *net.Interface, ipn *net.IPNet) error {
	rt, err := rtnl.Dial(nil)
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	defer rt.Close()
	if err := rt.AddrAdd(ifc, ipn); err != nil && !errors.Is(err, os.ErrExist) && !errors.Is(err, syscall.EEXIST) {
		return fmt.Errorf("add address %s: %w", ipn, err)
	}
	return nil
}

// errNoAddress is a DHCPv6 answer that leases no address.
var errNoAddress = errors.New("no address leased")

// leasedAddress is the first address of the answer's IA_NA, or an error naming the status the
// server gave instead.
func leasedAddress(m *dhcpv6.Message) (net.IP, error) {
	if sc := m.Options.Status(); sc != nil && sc.StatusCode != iana.StatusSuccess {
		return nil, fmt.Errorf("%w: %s %q", errNoAddress, sc.StatusCode, sc.StatusMessage)
	}
	ia := m.Options.OneIANA()
	if ia == nil {
		return nil, fmt.Errorf("%w: no IA_NA", errNoAddress)
	}
	if sc := ia.Options.Status(); sc != nil && sc.StatusCode != iana.StatusSuccess {
		return nil, fmt.Errorf("%w: %s %q", errNoAddress, sc.StatusCode, sc.StatusMessage)
	}
	a := ia.Options.OneAddress()
	if a == nil || a.IPv6Addr.To16() == nil || a.IPv6Addr.To4() != nil || !a.IPv6Addr.IsGlobalUnicast() {
		return nil, fmt.Errorf("%w: no usable address in IA_NA", errNoAddress)
	}
	if a.ValidLifetime == 0 {
		return nil, fmt.Errorf("%w: %s has valid lifetime 0", errNoAddress, a.IPv6Addr)
	}
	return a.IPv6Addr, nil
}

// next6 is a DHCPv6 transaction id (3 bytes), drawn like next's without kernel randomness.
func (s *xidSource) next6() dhcpv6.TransactionID {
	x := s.next()
	return dhcpv6.TransactionID{x[0], x[1], x[2]}
}

// clientDUID is the DUID-LL of the NIC's MAC: stable across boots of the ramdisk.
func clientDUID(mac net.HardwareAddr) dhcpv6.DUID {
	return &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: mac}
}

// iaid is the IA_NA's id: the last four bytes of the MAC.
func iaid(mac net.HardwareAddr) [4]byte {
	var id [4]byte
	if len(mac) >= 4 {
		copy(id[:], mac[len(mac)-4:])
	}
	return id
}

// solicitMessage asks for one address (IA_NA), with Rapid Commit, and for DNS servers.
func solicitMessage(xid dhcpv6.TransactionID, mac net.HardwareAddr) *dhcpv6.Message {
	m := &dhcpv6.Message{MessageType: dhcpv6.MessageTypeSolicit, TransactionID: xid}
	m.AddOption(dhcpv6.OptClientID(clientDUID(mac)))
	m.AddOption(dhcpv6.OptRequestedOption(dhcpv6.OptionDNSRecursiveNameServer, dhcpv6.OptionDomainSearchList))
	m.AddOption(dhcpv6.OptElapsedTime(0))
	m.AddOption(&dhcpv6.OptIANA{IaId: iaid(mac)})
	m.AddOption(&dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionRapidCommit})
	return m
}

// requestMessage6 requests the address adv offered, from the server that offered it.
func requestMessage6(xid dhcpv6.TransactionID, sol, adv *dhcpv6.Message) (*dhcpv6.Message, error) {
	sid := adv.GetOneOption(dhcpv6.OptionServerID)
	if sid == nil {
		return nil, errors.New("advertise without a server id")
	}
	ia := adv.Options.OneIANA()
	if ia == nil {
		return nil, fmt.Errorf("advertise: %w: no IA_NA", errNoAddress)
	}
	m := &dhcpv6.Message{MessageType: dhcpv6.MessageTypeRequest, TransactionID: xid}
	m.AddOption(sol.GetOneOption(dhcpv6.OptionClientID))
	m.AddOption(sid)
	m.AddOption(dhcpv6.OptRequestedOption(dhcpv6.OptionDNSRecursiveNameServer, dhcpv6.OptionDomainSearchList))
	m.AddOption(dhcpv6.OptElapsedTime(0))
	m.AddOption(ia)
	return m, nil
}
