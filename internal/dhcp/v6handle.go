package dhcp

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
)

// maxRelayHops bounds the Relay-forward nesting the server unwraps (RFC
// 8415's HOP_COUNT_LIMIT).
const maxRelayHops = 8

// enterpriseEFI is the IANA enterprise number of the UEFI vendor class
// ("HTTPClient" / "PXEClient") in DHCPv6 option 16.
const enterpriseEFI = 343

// maxScan6 bounds the addresses one allocation looks at in a large range.
const maxScan6 = 1 << 16

// Handle answers one DHCPv6 message that came from peer (its source
// address; used to learn the MAC of a directly attached client from its
// EUI-64 link-local address). It returns nil and no error for a message it
// does not answer, and an error only when a lookup or the lease store
// failed. It does no socket I/O, so it can be tested and fuzzed directly.
func (s *Server6) Handle(ctx context.Context, req dhcpv6.DHCPv6, peer netip.Addr) (dhcpv6.DHCPv6, error) {
	switch m := req.(type) {
	case *dhcpv6.Message:
		r, err := s.handleMessage(ctx, m, clientMAC6(m, nil, peer))
		if r == nil || err != nil {
			return nil, err
		}
		return r, nil
	case *dhcpv6.RelayMessage:
		return s.handleRelay(ctx, m)
	}
	return nil, nil
}

// handleRelay answers a Relay-forward from a relay on the provisioning
// network (the link address of the relay nearest the client lies in the
// prefix) with a Relay-reply; others are dropped.
func (s *Server6) handleRelay(ctx context.Context, rm *dhcpv6.RelayMessage) (dhcpv6.DHCPv6, error) {
	if !s.cfg.Relayed || rm.Type() != dhcpv6.MessageTypeRelayForward {
		s.log.DebugContext(ctx, "dropping relay message", keyType, rm.Type().String())
		return nil, nil
	}
	nearest := rm
	var msg *dhcpv6.Message
	for hop := 0; msg == nil; hop++ {
		if hop >= maxRelayHops {
			s.log.DebugContext(ctx, "dropping relay message: too many hops")
			return nil, nil
		}
		in, err := dhcpv6.DecapsulateRelay(nearest)
		if err != nil {
			s.log.DebugContext(ctx, "dropping relay message", keyErr, err)
			return nil, nil
		}
		switch m := in.(type) {
		case *dhcpv6.RelayMessage:
			if m.Type() != dhcpv6.MessageTypeRelayForward {
				return nil, nil
			}
			nearest = m
		case *dhcpv6.Message:
			msg = m
		default:
			return nil, nil
		}
	}
	link, ok := netip.AddrFromSlice(nearest.LinkAddr)
	if !ok || !s.cfg.Prefix.Contains(link.Unmap()) {
		s.log.DebugContext(ctx, "dropping relayed message", keyRelay, nearest.LinkAddr.String(), keyErr, errUnknownSubnet)
		return nil, nil
	}
	ht, lla := nearest.Options.ClientLinkLayerAddress()
	var relayMAC net.HardwareAddr
	if ht == iana.HWTypeEthernet && len(lla) == 6 {
		relayMAC = lla
	}
	reply, err := s.handleMessage(ctx, msg, clientMAC6(msg, relayMAC, netip.Addr{}))
	if reply == nil || err != nil {
		return nil, err
	}
	rr, err := dhcpv6.NewRelayReplFromRelayForw(rm, reply)
	if err != nil {
		s.log.DebugContext(ctx, "dropping relayed message", keyErr, err)
		return nil, nil
	}
	return rr, nil
}

// clientMAC6 is the client's MAC: from its relay (option 79), its DUID-LL
// or DUID-LLT, or the EUI-64 interface identifier of its link-local source
// address; nil if none says.
func clientMAC6(m *dhcpv6.Message, relayMAC net.HardwareAddr, peer netip.Addr) net.HardwareAddr {
	if len(relayMAC) == 6 {
		return relayMAC
	}
	switch d := m.Options.ClientID().(type) {
	case *dhcpv6.DUIDLL:
		if d.HWType == iana.HWTypeEthernet && len(d.LinkLayerAddr) == 6 {
			return d.LinkLayerAddr
		}
	case *dhcpv6.DUIDLLT:
		if d.HWType == iana.HWTypeEthernet && len(d.LinkLayerAddr) == 6 {
			return d.LinkLayerAddr
		}
	}
	if peer.Is6() && peer.IsLinkLocalUnicast() {
		b := peer.As16()
		if b[11] == 0xff && b[12] == 0xfe {
			return net.HardwareAddr{b[8] ^ 0x02, b[9], b[10], b[13], b[14], b[15]}
		}
	}
	return nil
}

// clientKey names one IA of a client in the lease store.
func clientKey(duid []byte, iaid [4]byte) string {
	return hex.EncodeToString(duid) + "/" + hex.EncodeToString(iaid[:])
}

func (s *Server6) ours(d dhcpv6.DUID) bool {
	return d != nil && bytes.Equal(d.ToBytes(), s.cfg.ServerDUID)
}

func (s *Server6) handleMessage(ctx context.Context, m *dhcpv6.Message, mac net.HardwareAddr) (*dhcpv6.Message, error) {
	mt := m.Type()
	cid := m.Options.ClientID()
	sid := m.Options.ServerID()
	// RFC 8415 16: which messages must, may or must not carry the
	// identifiers; a message that breaks the rules is dropped.
	switch mt {
	case dhcpv6.MessageTypeSolicit, dhcpv6.MessageTypeConfirm, dhcpv6.MessageTypeRebind:
		if cid == nil || sid != nil {
			return nil, nil
		}
	case dhcpv6.MessageTypeRequest, dhcpv6.MessageTypeRenew, dhcpv6.MessageTypeRelease, dhcpv6.MessageTypeDecline:
		if cid == nil || !s.ours(sid) {
			return nil, nil
		}
	case dhcpv6.MessageTypeInformationRequest:
		if (sid != nil && !s.ours(sid)) || len(m.Options.IANA()) > 0 {
			return nil, nil
		}
	default:
		return nil, nil
	}
	var c Client
	if mac != nil {
		var err error
		if c, err = s.nodes.Lookup(ctx, mac); err != nil {
			return nil, fmt.Errorf("look up %v: %w", mac, err)
		}
	}
	if !(c.Known || s.cfg.Discovery) {
		s.log.DebugContext(ctx, "ignoring unknown client", keyMAC, macString(mac), keyType, mt.String())
		return nil, nil
	}
	if s.cfg.Mode == Mode6Stateless {
		switch mt {
		case dhcpv6.MessageTypeInformationRequest:
		case dhcpv6.MessageTypeSolicit:
			// No addresses here (SLAAC): say so, with the boot options.
			r := s.reply(m, dhcpv6.MessageTypeAdvertise)
			r.AddOption(&dhcpv6.OptStatusCode{StatusCode: iana.StatusNoAddrsAvail, StatusMessage: "addresses come from SLAAC"})
			s.addInfo(ctx, r, m, mac, c)
			return r, nil
		default:
			return nil, nil
		}
	}
	now := time.Now()
	switch mt {
	case dhcpv6.MessageTypeSolicit:
		return s.solicit(ctx, m, mac, c, now)
	case dhcpv6.MessageTypeRequest:
		return s.assign(ctx, s.reply(m, dhcpv6.MessageTypeReply), m, mac, c, now, false)
	case dhcpv6.MessageTypeRenew, dhcpv6.MessageTypeRebind:
		return s.renew(ctx, m, mac, c, now)
	case dhcpv6.MessageTypeRelease:
		return s.release6(ctx, m, now)
	case dhcpv6.MessageTypeDecline:
		return s.decline6(ctx, m, now)
	case dhcpv6.MessageTypeConfirm:
		return s.confirm(m), nil
	default: // Information-request
		r := s.reply(m, dhcpv6.MessageTypeReply)
		r.AddOption(dhcpv6.OptInformationRefreshTime(s.cfg.InfoRefresh))
		s.addInfo(ctx, r, m, mac, c)
		return r, nil
	}
}

// reply starts an answer to m: its transaction, the client's identifier
// (if any) and ours.
func (s *Server6) reply(m *dhcpv6.Message, mt dhcpv6.MessageType) *dhcpv6.Message {
	r := &dhcpv6.Message{MessageType: mt, TransactionID: m.TransactionID}
	if cid := m.GetOneOption(dhcpv6.OptionClientID); cid != nil {
		r.AddOption(cid)
	}
	r.AddOption(dhcpv6.OptServerID(s.duid))
	return r
}

func macString(mac net.HardwareAddr) string {
	if mac == nil {
		return ""
	}
	return mac.String()
}

// solicit advertises an address per IA_NA, or with Rapid Commit assigns
// them at once.
func (s *Server6) solicit(ctx context.Context, m *dhcpv6.Message, mac net.HardwareAddr, c Client, now time.Time) (*dhcpv6.Message, error) {
	if m.GetOneOption(dhcpv6.OptionRapidCommit) != nil && !s.cfg.NoRapidCommit {
		r := s.reply(m, dhcpv6.MessageTypeReply)
		r.AddOption(&dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionRapidCommit})
		return s.assign(ctx, r, m, mac, c, now, false)
	}
	r := s.reply(m, dhcpv6.MessageTypeAdvertise)
	r.AddOption(dhcpv6.OptPreference(255)) // the only server: clients need not wait for others
	return s.assign(ctx, r, m, mac, c, now, true)
}

// assign gives each IA_NA of m an address into r: held for OfferHold when
// advertise, else leased for the valid lifetime.
func (s *Server6) assign(ctx context.Context, r, m *dhcpv6.Message, mac net.HardwareAddr, c Client, now time.Time, advertise bool) (*dhcpv6.Message, error) {
	cid := m.Options.ClientID().ToBytes()
	ias := m.Options.IANA()
	if len(ias) == 0 {
		r.AddOption(&dhcpv6.OptStatusCode{StatusCode: iana.StatusNoAddrsAvail, StatusMessage: "no IA_NA in the request"})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ia := range ias {
		key := clientKey(cid, ia.IaId)
		var hint netip.Addr
		if a := ia.Options.OneAddress(); a != nil {
			hint, _ = netip.AddrFromSlice(a.IPv6Addr)
		}
		ip, err := s.pick6(ctx, key, mac, c, hint, now)
		if errors.Is(err, errNoAddress) {
			s.log.WarnContext(ctx, "no IPv6 address to give", keyMAC, macString(mac), keyPrefix, s.cfg.Prefix.String())
			r.AddOption(&dhcpv6.OptIANA{IaId: ia.IaId, Options: dhcpv6.IdentityOptions{Options: dhcpv6.Options{
				&dhcpv6.OptStatusCode{StatusCode: iana.StatusNoAddrsAvail, StatusMessage: "no address left"}}}})
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("pick IPv6 address for %s: %w", key, err)
		}
		l := Lease6{Client: key, MAC: mac, IP: ip, Expires: now.Add(s.cfg.ValidLifetime)}
		if advertise {
			l.Expires = now.Add(s.cfg.OfferHold)
			if old, found, err := s.leases.Lease6(ctx, key); err != nil {
				return nil, fmt.Errorf("look up lease: %w", err)
			} else if found && old.IP == ip {
				l.Expires = later(l.Expires, old.Expires)
			}
		}
		if err := s.commit6(ctx, l, now); err != nil {
			return nil, err
		}
		r.AddOption(s.iaWith(ia.IaId, ip, s.cfg.PreferredLifetime, s.cfg.ValidLifetime))
		if !advertise {
			s.log.InfoContext(ctx, "lease", keyMAC, macString(mac), keyIP, ip.String(), keyNode, c.Node, keyNetBoot, s.wantsBoot6(c), keyPrefix, s.cfg.Prefix.String())
		}
	}
	s.addInfo(ctx, r, m, mac, c)
	return r, nil
}

// iaWith is an IA_NA holding ip with T1 and T2 at 1/2 and 4/5 of the preferred lifetime
// (both zero for an address being withdrawn).
func (s *Server6) iaWith(iaid [4]byte, ip netip.Addr, preferred, valid time.Duration) *dhcpv6.OptIANA {
	return &dhcpv6.OptIANA{IaId: iaid, T1: preferred / 2, T2: preferred * 4 / 5, Options: dhcpv6.IdentityOptions{Options: dhcpv6.Options{
		&dhcpv6.OptIAAddress{IPv6Addr: net.IP(ip.AsSlice()), PreferredLifetime: preferred, ValidLifetime: valid}}}}
}

// renew extends the client's leases (Renew and Rebind). An IA without a
// binding gets NoBinding; on Rebind, an address not on this link gets
// lifetimes 0, and one still free in the range is given back (the lease
// store lost it).
func (s *Server6) renew(ctx context.Context, m *dhcpv6.Message, mac net.HardwareAddr, c Client, now time.Time) (*dhcpv6.Message, error) {
	rebind := m.Type() == dhcpv6.MessageTypeRebind
	r := s.reply(m, dhcpv6.MessageTypeReply)
	cid := m.Options.ClientID().ToBytes()
	s.mu.Lock()
	defer s.mu.Unlock()
	answered := false
	for _, ia := range m.Options.IANA() {
		key := clientKey(cid, ia.IaId)
		l, found, err := s.leases.Lease6(ctx, key)
		if err != nil {
			return nil, fmt.Errorf("look up lease: %w", err)
		}
		var asked []netip.Addr
		for _, a := range ia.Options.Addresses() {
			if ip, ok := netip.AddrFromSlice(a.IPv6Addr); ok {
				asked = append(asked, ip)
			}
		}
		if !found && rebind && len(asked) > 0 {
			ok, err := s.usable6(ctx, asked[0], key, mac, now)
			if err != nil {
				return nil, err
			}
			if ok {
				l, found = Lease6{Client: key, MAC: mac, IP: asked[0]}, true
			}
		}
		if !found || (l.IP.IsValid() && !inRange6(s.cfg.Subnet6, l.IP)) {
			if rebind {
				notOurs := true
				for _, ip := range asked {
					if s.cfg.Prefix.Contains(ip) {
						notOurs = false
					}
				}
				if len(asked) == 0 || !notOurs {
					continue // RFC 8415 18.3.5: no reply for this IA
				}
				for _, ip := range asked {
					r.AddOption(s.iaWith(ia.IaId, ip, 0, 0))
				}
				answered = true
				continue
			}
			r.AddOption(&dhcpv6.OptIANA{IaId: ia.IaId, Options: dhcpv6.IdentityOptions{Options: dhcpv6.Options{
				&dhcpv6.OptStatusCode{StatusCode: iana.StatusNoBinding, StatusMessage: "no binding for this IA"}}}})
			answered = true
			continue
		}
		l.Expires = now.Add(s.cfg.ValidLifetime)
		if mac != nil {
			l.MAC = mac
		}
		if err := s.commit6(ctx, l, now); err != nil {
			return nil, err
		}
		ia6 := s.iaWith(ia.IaId, l.IP, s.cfg.PreferredLifetime, s.cfg.ValidLifetime)
		for _, ip := range asked {
			if ip != l.IP { // addresses the client must stop using
				ia6.Options.Add(&dhcpv6.OptIAAddress{IPv6Addr: net.IP(ip.AsSlice())})
			}
		}
		r.AddOption(ia6)
		answered = true
		s.log.DebugContext(ctx, "lease renewed", keyMAC, macString(mac), keyIP, l.IP.String(), keyNode, c.Node)
	}
	if !answered {
		if rebind {
			return nil, nil
		}
		r.AddOption(&dhcpv6.OptStatusCode{StatusCode: iana.StatusNoBinding, StatusMessage: "no IA to renew"})
	}
	s.addInfo(ctx, r, m, mac, c)
	return r, nil
}

// release6 ends the leases of the addresses in m's IAs; the records stay,
// expired, so the client gets the same address back.
func (s *Server6) release6(ctx context.Context, m *dhcpv6.Message, now time.Time) (*dhcpv6.Message, error) {
	r := s.reply(m, dhcpv6.MessageTypeReply)
	cid := m.Options.ClientID().ToBytes()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ia := range m.Options.IANA() {
		key := clientKey(cid, ia.IaId)
		l, found, err := s.leases.Lease6(ctx, key)
		if err != nil {
			return nil, fmt.Errorf("look up lease: %w", err)
		}
		held := false
		for _, a := range ia.Options.Addresses() {
			if ip, ok := netip.AddrFromSlice(a.IPv6Addr); ok && found && ip == l.IP {
				held = true
			}
		}
		if !held {
			r.AddOption(&dhcpv6.OptIANA{IaId: ia.IaId, Options: dhcpv6.IdentityOptions{Options: dhcpv6.Options{
				&dhcpv6.OptStatusCode{StatusCode: iana.StatusNoBinding, StatusMessage: "no binding for this IA"}}}})
			continue
		}
		if l.Active(now) {
			l.Expires = now
			if err := s.leases.PutLease6(ctx, l); err != nil {
				return nil, fmt.Errorf("release lease: %w", err)
			}
			s.log.InfoContext(ctx, "released", keyMAC, macString(l.MAC), keyIP, l.IP.String())
		}
	}
	r.AddOption(&dhcpv6.OptStatusCode{StatusCode: iana.StatusSuccess, StatusMessage: "released"})
	return r, nil
}

// decline6 holds back the addresses a client found in use and forgets its
// leases of them.
func (s *Server6) decline6(ctx context.Context, m *dhcpv6.Message, now time.Time) (*dhcpv6.Message, error) {
	r := s.reply(m, dhcpv6.MessageTypeReply)
	cid := m.Options.ClientID().ToBytes()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ia := range m.Options.IANA() {
		key := clientKey(cid, ia.IaId)
		l, found, err := s.leases.Lease6(ctx, key)
		if err != nil {
			return nil, fmt.Errorf("look up lease: %w", err)
		}
		for _, a := range ia.Options.Addresses() {
			ip, ok := netip.AddrFromSlice(a.IPv6Addr)
			if !ok || !found || ip != l.IP {
				continue
			}
			s.declined[ip] = now.Add(s.cfg.DeclineHold)
			s.log.WarnContext(ctx, "client declined address (in use?); holding it back", keyMAC, macString(l.MAC), keyIP, ip.String())
			if err := s.leases.DeleteLease6(ctx, key); err != nil {
				return nil, fmt.Errorf("delete declined lease: %w", err)
			}
		}
	}
	r.AddOption(&dhcpv6.OptStatusCode{StatusCode: iana.StatusSuccess, StatusMessage: "declined"})
	return r, nil
}

// confirm tells a client (after a link change) whether its addresses are
// on this link; a Confirm without addresses gets no answer.
func (s *Server6) confirm(m *dhcpv6.Message) *dhcpv6.Message {
	have, onLink := false, true
	for _, ia := range m.Options.IANA() {
		for _, a := range ia.Options.Addresses() {
			have = true
			ip, ok := netip.AddrFromSlice(a.IPv6Addr)
			if !ok || !s.cfg.Prefix.Contains(ip) {
				onLink = false
			}
		}
	}
	if !have {
		return nil
	}
	r := s.reply(m, dhcpv6.MessageTypeReply)
	if onLink {
		r.AddOption(&dhcpv6.OptStatusCode{StatusCode: iana.StatusSuccess, StatusMessage: "on link"})
	} else {
		r.AddOption(&dhcpv6.OptStatusCode{StatusCode: iana.StatusNotOnLink, StatusMessage: "not on this link"})
	}
	return r
}

// addInfo puts the configuration every answer carries: DNS servers and,
// for a client meant to net-boot, the boot file URL.
func (s *Server6) addInfo(ctx context.Context, r, m *dhcpv6.Message, mac net.HardwareAddr, c Client) {
	if len(s.cfg.DNS) > 0 {
		ips := make([]net.IP, len(s.cfg.DNS))
		for i, d := range s.cfg.DNS {
			ips[i] = net.IP(d.AsSlice())
		}
		r.AddOption(dhcpv6.OptDNS(ips...))
	}
	if !s.wantsBoot6(c) {
		return
	}
	b, ok := s.boot6(m, mac, c)
	if !ok {
		s.log.DebugContext(ctx, "no IPv6 boot file for client", keyMAC, macString(mac), keyArch, fmt.Sprint(m.Options.ArchTypes()))
		return
	}
	r.AddOption(dhcpv6.OptBootFileURL(b.file))
	if b.http {
		r.AddOption(&dhcpv6.OptVendorClass{EnterpriseNumber: enterpriseEFI, Data: [][]byte{[]byte(vendorHTTP)}})
	}
}

// wantsBoot6 is wantsBoot for DHCPv6.
func (s *Server6) wantsBoot6(c Client) bool {
	if c.Known {
		return c.NetBoot
	}
	return s.cfg.Discovery
}

// boot6 is what m's client should boot: iPXE (user class "iPXE") gets its
// script, a UEFI HTTP client (vendor class "HTTPClient" or architecture
// 16) gets the iPXE EFI binary over HTTP. A PXE client wanting TFTP gets
// nothing: the TFTP server does not listen on IPv6.
func (s *Server6) boot6(m *dhcpv6.Message, mac net.HardwareAddr, c Client) (bootInfo, bool) {
	for _, uc := range m.Options.UserClasses() {
		if string(uc) == "iPXE" {
			return bootInfo{file: s.cfg.ScriptURL(mac, c), ipxe: true, arch: -1}, true
		}
	}
	httpc := false
	for _, vc := range m.Options.VendorClasses() {
		for _, d := range vc.Data {
			if strings.HasPrefix(string(d), vendorHTTP) {
				httpc = true
			}
		}
	}
	for _, a := range m.Options.ArchTypes() {
		if a == iana.EFI_X86_64_HTTP {
			httpc = true
		}
	}
	if httpc {
		return bootInfo{file: s.cfg.HTTPBootURL + "/" + s.cfg.HTTPBootFile, http: true, arch: int(iana.EFI_X86_64_HTTP)}, true
	}
	return bootInfo{}, false
}

// inRange6 reports whether ip lies in the subnet's stateful range.
func inRange6(sn Subnet6, ip netip.Addr) bool {
	return sn.RangeStart.IsValid() && ip.Compare(sn.RangeStart) >= 0 && ip.Compare(sn.RangeEnd) <= 0
}

// usable6 reports whether ip may be given to the client key (MAC mac) now:
// in the range, not the server's, not declined, not another port's static
// address, not actively leased to another client. s.mu must be held.
func (s *Server6) usable6(ctx context.Context, ip netip.Addr, key string, mac net.HardwareAddr, now time.Time) (bool, error) {
	ip = ip.WithZone("")
	if !inRange6(s.cfg.Subnet6, ip) || ip == s.cfg.ServerIP {
		return false, nil
	}
	if until, ok := s.declined[ip]; ok {
		if now.Before(until) {
			return false, nil
		}
		delete(s.declined, ip)
	}
	if so, ok := s.nodes.(StaticOwners); ok {
		owner, found, err := so.StaticOwner(ctx, net.IP(ip.AsSlice()))
		if err != nil {
			return false, fmt.Errorf("look up static owner of %v: %w", ip, err)
		}
		if found && (mac == nil || owner.String() != mac.String()) {
			return false, nil
		}
	}
	l, found, err := s.leases.ByIP6(ctx, ip)
	if err != nil {
		return false, fmt.Errorf("look up lease of %v: %w", ip, err)
	}
	return !found || l.Client == key || !l.Active(now), nil
}

// pick6 chooses the address for an IA: the port's static IPv6 address,
// else the one the IA had, else the client's hint, else the next usable one
// after the cursor (looking at no more than maxScan6). s.mu must be held.
func (s *Server6) pick6(ctx context.Context, key string, mac net.HardwareAddr, c Client, hint netip.Addr, now time.Time) (netip.Addr, error) {
	if st, ok := netip.AddrFromSlice(c.StaticIP); ok && st.Is6() && !st.Is4In6() {
		if inRange6(s.cfg.Subnet6, st) || (s.cfg.Prefix.Contains(st) && st != s.cfg.ServerIP) {
			return st, nil
		}
		s.log.WarnContext(ctx, "static IPv6 address outside the prefix; using the range", keyMAC, macString(mac), keyIP, st.String())
	}
	if l, found, err := s.leases.Lease6(ctx, key); err != nil {
		return netip.Addr{}, fmt.Errorf("look up lease: %w", err)
	} else if found {
		if ok, err := s.usable6(ctx, l.IP, key, mac, now); err != nil {
			return netip.Addr{}, err
		} else if ok {
			return l.IP, nil
		}
	}
	if hint.Is6() {
		if ok, err := s.usable6(ctx, hint, key, mac, now); err != nil {
			return netip.Addr{}, err
		} else if ok {
			return hint.WithZone(""), nil
		}
	}
	first, last := lo64(s.cfg.RangeStart), lo64(s.cfg.RangeEnd)
	size := last - first + 1 // 0: the whole 2^64
	n := uint64(maxScan6)
	if size != 0 && size < n {
		n = size
	}
	if s.cursor < first || s.cursor > last {
		s.cursor = first
	}
	for i := uint64(0); i < n; i++ {
		if err := ctx.Err(); err != nil {
			return netip.Addr{}, err
		}
		v := s.cursor
		if v == last {
			s.cursor = first
		} else {
			s.cursor++
		}
		ip := withLo64(s.cfg.RangeStart, v)
		ok, err := s.usable6(ctx, ip, key, mac, now)
		if err != nil {
			return netip.Addr{}, err
		}
		if ok {
			return ip, nil
		}
	}
	return netip.Addr{}, errNoAddress
}

// commit6 stores l, taking its address from another client whose lease on
// it has expired (or who holds this port's static address). s.mu must be held.
func (s *Server6) commit6(ctx context.Context, l Lease6, now time.Time) error {
	other, found, err := s.leases.ByIP6(ctx, l.IP)
	if err != nil {
		return fmt.Errorf("look up lease of %v: %w", l.IP, err)
	}
	if found && other.Client != l.Client {
		if other.Active(now) {
			s.log.WarnContext(ctx, "static address was leased to another client; taking it back", keyIP, l.IP.String(), keyMAC, macString(l.MAC))
		}
		if err := s.leases.DeleteLease6(ctx, other.Client); err != nil {
			return fmt.Errorf("delete lease of %s: %w", other.Client, err)
		}
	}
	if err := s.leases.PutLease6(ctx, l); err != nil {
		return fmt.Errorf("put lease %v for %s: %w", l.IP, l.Client, err)
	}
	return nil
}
