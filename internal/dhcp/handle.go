package dhcp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

// Ports the server answers on.
const (
	PortDHCP = 67
	PortPXE  = 4011 // proxyDHCP boot-server requests
)

// Handle answers one request that arrived on port (PortDHCP or PortPXE). It
// returns nil and no error for a request it does not answer, and an error
// only when a lookup or the lease store failed. It does no I/O of its own
// beyond Nodes and Leases, so it can be tested and fuzzed directly.
func (s *Server) Handle(ctx context.Context, req *dhcpv4.DHCPv4, port int) (*dhcpv4.DHCPv4, error) {
	if req == nil || req.OpCode != dhcpv4.OpcodeBootRequest || req.HWType != iana.HWTypeEthernet || len(req.ClientHWAddr) != 6 {
		s.log.DebugContext(ctx, "dropping non-Ethernet or non-request packet")
		return nil, nil
	}
	mac := req.ClientHWAddr
	p, err := s.poolFor(req)
	if err != nil {
		s.log.DebugContext(ctx, "dropping relayed request", keyMAC, mac.String(), keyRelay, req.GatewayIPAddr.String(), keyErr, err)
		return nil, nil
	}
	mt := req.MessageType()
	switch s.cfg.Mode {
	case ModeFull:
		if port != PortDHCP {
			return nil, nil
		}
		return s.handleFull(ctx, req, mt, p)
	case ModeProxy:
		return s.handleProxy(ctx, req, mt, port)
	}
	return nil, nil
}

func (s *Server) lookup(ctx context.Context, mac net.HardwareAddr) (Client, error) {
	c, err := s.nodes.Lookup(ctx, mac)
	if err != nil {
		return Client{}, fmt.Errorf("look up %v: %w", mac, err)
	}
	return c, nil
}

func (s *Server) handleFull(ctx context.Context, req *dhcpv4.DHCPv4, mt dhcpv4.MessageType, p *pool) (*dhcpv4.DHCPv4, error) {
	switch mt {
	case dhcpv4.MessageTypeDiscover, dhcpv4.MessageTypeRequest, dhcpv4.MessageTypeDecline,
		dhcpv4.MessageTypeRelease, dhcpv4.MessageTypeInform:
	default:
		return nil, nil
	}
	mac := req.ClientHWAddr
	c, err := s.lookup(ctx, mac)
	if err != nil {
		return nil, err
	}
	if !s.served(c) {
		s.log.DebugContext(ctx, "ignoring unknown MAC", keyMAC, mac.String(), keyType, mt.String())
		return nil, nil
	}
	switch mt {
	case dhcpv4.MessageTypeDiscover:
		return s.offer(ctx, req, c, p)
	case dhcpv4.MessageTypeRequest:
		return s.request(ctx, req, c, p)
	case dhcpv4.MessageTypeDecline:
		return nil, s.decline(ctx, req, p)
	case dhcpv4.MessageTypeRelease:
		return nil, s.release(ctx, req, p)
	default:
		return s.inform(ctx, req, c, p)
	}
}

func (s *Server) offer(ctx context.Context, req *dhcpv4.DHCPv4, c Client, p *pool) (*dhcpv4.DHCPv4, error) {
	mac := req.ClientHWAddr
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	// Another server on the same lease store may take the address we chose between our
	// pick and our commit; the store refuses the second holder, and we pick again.
	for attempt := 1; ; attempt++ {
		ip, old, err := s.pick(ctx, p, mac, c, req.RequestedIPAddress(), now)
		if errors.Is(err, errNoAddress) {
			s.log.WarnContext(ctx, "no address to offer", keyMAC, mac.String(), keySubnet, p.String())
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("pick address for %v: %w", mac, err)
		}
		l := Lease{MAC: mac, Subnet: p.String(), IP: ip, Expires: now.Add(s.cfg.OfferHold), Hostname: req.HostName()}
		if old != nil && old.IP.Equal(ip) {
			// Re-offering a held address must not shorten its lease.
			l.Expires = later(l.Expires, old.Expires)
			if l.Hostname == "" {
				l.Hostname = old.Hostname
			}
		}
		err = s.commit(ctx, l, now, s.validStatic(p, c) && ip.Equal(c.StaticIP))
		if errors.Is(err, ErrAddressInUse) && attempt < maxCommitAttempts {
			s.log.DebugContext(ctx, "address taken by another server; picking again", keyMAC, mac.String(), keyIP, ip.String())
			continue
		}
		if err != nil {
			return nil, err
		}
		s.log.DebugContext(ctx, "offer", keyMAC, mac.String(), keyIP, ip.String(), keyNode, c.Node)
		return s.leaseReply(req, dhcpv4.MessageTypeOffer, ip, c, p), nil
	}
}

func (s *Server) request(ctx context.Context, req *dhcpv4.DHCPv4, c Client, p *pool) (*dhcpv4.DHCPv4, error) {
	mac := req.ClientHWAddr
	if sid := req.ServerIdentifier(); sid != nil && !sid.Equal(s.cfg.ServerIP) {
		s.log.DebugContext(ctx, "client chose another server", keyMAC, mac.String(), keyServer, sid.String())
		return nil, nil
	}
	ip := req.RequestedIPAddress().To4()
	if ip == nil && req.ClientIPAddr != nil && !req.ClientIPAddr.IsUnspecified() {
		ip = req.ClientIPAddr.To4()
	}
	if ip == nil {
		return s.nak(req, "no address requested"), nil
	}
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	var ok bool
	if s.validStatic(p, c) {
		ok = ip.Equal(c.StaticIP)
	} else {
		var err error
		if ok, err = s.usable(ctx, p, ip, mac, now); err != nil {
			return nil, err
		}
	}
	if !ok {
		s.log.InfoContext(ctx, "NAK: address not available to client", keyMAC, mac.String(), keyIP, ip.String())
		return s.nak(req, "address not available"), nil
	}
	hostname := req.HostName()
	if old, found, err := s.leases.Lease(ctx, p.String(), mac); err != nil {
		return nil, fmt.Errorf("look up lease: %w", err)
	} else if found && hostname == "" {
		hostname = old.Hostname
	}
	l := Lease{MAC: mac, Subnet: p.String(), IP: ip, Expires: now.Add(p.leaseTime), Hostname: hostname}
	if err := s.commit(ctx, l, now, s.validStatic(p, c) && ip.Equal(c.StaticIP)); errors.Is(err, ErrAddressInUse) {
		// Another server on the lease store gave the address away meanwhile.
		s.log.InfoContext(ctx, "NAK: address taken by another server", keyMAC, mac.String(), keyIP, ip.String())
		return s.nak(req, "address not available"), nil
	} else if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "lease", keyMAC, mac.String(), keyIP, ip.String(), keyNode, c.Node, keyNetBoot, s.wantsBoot(c), keyVIF, c.TenantVIF, keySubnet, p.String())
	return s.leaseReply(req, dhcpv4.MessageTypeAck, ip, c, p), nil
}

func (s *Server) decline(ctx context.Context, req *dhcpv4.DHCPv4, p *pool) error {
	mac := req.ClientHWAddr
	ip := req.RequestedIPAddress().To4()
	if sid := req.ServerIdentifier(); ip == nil || sid == nil || !sid.Equal(s.cfg.ServerIP) || !p.inRange(ip) {
		return nil
	}
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.declined == nil {
		p.declined = make(map[uint32]time.Time)
	}
	p.declined[ipToU32(ip)] = now.Add(s.cfg.DeclineHold)
	s.log.WarnContext(ctx, "client declined address (in use?); holding it back", keyMAC, mac.String(), keyIP, ip.String())
	l, found, err := s.leases.Lease(ctx, p.String(), mac)
	if err != nil {
		return fmt.Errorf("look up lease: %w", err)
	}
	if found && l.IP.Equal(ip) {
		if err := s.leases.DeleteLease(ctx, p.String(), mac); err != nil {
			return fmt.Errorf("delete declined lease: %w", err)
		}
	}
	return nil
}

func (s *Server) release(ctx context.Context, req *dhcpv4.DHCPv4, p *pool) error {
	mac := req.ClientHWAddr
	ip := req.ClientIPAddr.To4()
	if sid := req.ServerIdentifier(); ip == nil || (sid != nil && !sid.Equal(s.cfg.ServerIP)) {
		return nil
	}
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	l, found, err := s.leases.Lease(ctx, p.String(), mac)
	if err != nil {
		return fmt.Errorf("look up lease: %w", err)
	}
	if !found || !l.IP.Equal(ip) || !l.Active(now) {
		return nil
	}
	// Keep the record, expired, so the MAC gets the address back if nobody
	// else took it meanwhile.
	l.Expires = now
	if err := s.leases.PutLease(ctx, l); err != nil {
		return fmt.Errorf("release lease: %w", err)
	}
	s.log.InfoContext(ctx, "released", keyMAC, mac.String(), keyIP, ip.String())
	return nil
}

func (s *Server) inform(ctx context.Context, req *dhcpv4.DHCPv4, c Client, p *pool) (*dhcpv4.DHCPv4, error) {
	if req.ClientIPAddr == nil || !p.contains(req.ClientIPAddr) {
		return nil, nil
	}
	reply := s.leaseReply(req, dhcpv4.MessageTypeAck, nil, c, p)
	reply.Options.Del(dhcpv4.OptionIPAddressLeaseTime)
	reply.Options.Del(dhcpv4.OptionRenewTimeValue)
	reply.Options.Del(dhcpv4.OptionRebindingTimeValue)
	return reply, nil
}

func (s *Server) handleProxy(ctx context.Context, req *dhcpv4.DHCPv4, mt dhcpv4.MessageType, port int) (*dhcpv4.DHCPv4, error) {
	var replyType dhcpv4.MessageType
	switch {
	case port == PortDHCP && mt == dhcpv4.MessageTypeDiscover:
		vc := req.ClassIdentifier()
		if !strings.HasPrefix(vc, vendorPXE) && !strings.HasPrefix(vc, vendorHTTP) {
			return nil, nil // not a PXE client: the site DHCP server's business
		}
		replyType = dhcpv4.MessageTypeOffer
	case port == PortPXE && (mt == dhcpv4.MessageTypeRequest || mt == dhcpv4.MessageTypeInform):
		replyType = dhcpv4.MessageTypeAck
	default:
		return nil, nil // proxyDHCP never NAKs and never leases
	}
	mac := req.ClientHWAddr
	c, err := s.lookup(ctx, mac)
	if err != nil {
		return nil, err
	}
	if !s.wantsBoot(c) {
		s.log.DebugContext(ctx, "not a net-boot client", keyMAC, mac.String(), keyKnown, c.Known)
		return nil, nil
	}
	b, ok := s.bootFor(req, c)
	if !ok {
		s.log.DebugContext(ctx, "no boot file for client architecture", keyMAC, mac.String(), keyArch, clientArch(req))
		return nil, nil
	}
	reply := newReply(req, replyType)
	s.addCommon(reply)
	s.addBoot(req, reply, b)
	s.log.DebugContext(ctx, "proxy boot reply", keyMAC, mac.String(), keyType, replyType.String(), keyFile, b.file)
	return reply, nil
}

// newReply returns a reply to req of type mt with nothing else set (the
// library's constructor draws a random xid that a reply does not need).
func newReply(req *dhcpv4.DHCPv4, mt dhcpv4.MessageType) *dhcpv4.DHCPv4 {
	reply := &dhcpv4.DHCPv4{
		OpCode:        dhcpv4.OpcodeBootReply,
		HWType:        req.HWType,
		TransactionID: req.TransactionID,
		Flags:         req.Flags,
		ClientIPAddr:  net.IPv4zero,
		YourIPAddr:    net.IPv4zero,
		ServerIPAddr:  net.IPv4zero,
		GatewayIPAddr: net.IPv4zero,
		ClientHWAddr:  req.ClientHWAddr,
		Options:       make(dhcpv4.Options),
	}
	if gi := req.GatewayIPAddr.To4(); gi != nil {
		reply.GatewayIPAddr = gi
	}
	if mt == dhcpv4.MessageTypeAck {
		if ci := req.ClientIPAddr.To4(); ci != nil {
			reply.ClientIPAddr = ci
		}
	}
	reply.UpdateOption(dhcpv4.OptMessageType(mt))
	if id := req.Options.Get(dhcpv4.OptionClientIdentifier); id != nil {
		reply.UpdateOption(dhcpv4.OptClientIdentifier(id)) // RFC 6842
	}
	if rai := req.Options.Get(dhcpv4.OptionRelayAgentInformation); rai != nil {
		reply.UpdateOption(dhcpv4.OptGeneric(dhcpv4.OptionRelayAgentInformation, rai))
	}
	return reply
}

// leaseReply builds a full-mode OFFER or ACK of ip (nil for INFORM) in p.
func (s *Server) leaseReply(req *dhcpv4.DHCPv4, mt dhcpv4.MessageType, ip net.IP, c Client, p *pool) *dhcpv4.DHCPv4 {
	reply := newReply(req, mt)
	if ip != nil {
		reply.YourIPAddr = ip
	}
	reply.UpdateOption(dhcpv4.OptSubnetMask(p.netmask))
	reply.UpdateOption(dhcpv4.OptIPAddressLeaseTime(p.leaseTime))
	reply.UpdateOption(dhcpv4.OptRenewTimeValue(p.leaseTime / 2))
	reply.UpdateOption(dhcpv4.OptRebindingTimeValue(p.leaseTime * 7 / 8))
	if r := routerFor(p, req); r != nil {
		reply.UpdateOption(dhcpv4.OptRouter(r))
	}
	if len(p.dns) > 0 {
		reply.UpdateOption(dhcpv4.OptDNS(p.dns...))
	}
	if p.mtu > 0 {
		reply.UpdateOption(dhcpv4.OptGeneric(dhcpv4.OptionInterfaceMTU, []byte{byte(p.mtu >> 8), byte(p.mtu)}))
	}
	s.addCommon(reply)
	if s.wantsBoot(c) {
		if b, ok := s.bootFor(req, c); ok {
			s.addBoot(req, reply, b)
		}
	}
	return reply
}

// nak refuses a REQUEST (full mode only); it is broadcast.
func (s *Server) nak(req *dhcpv4.DHCPv4, reason string) *dhcpv4.DHCPv4 {
	reply := newReply(req, dhcpv4.MessageTypeNak)
	reply.ClientIPAddr = net.IPv4zero
	reply.UpdateOption(dhcpv4.OptServerIdentifier(s.cfg.ServerIP))
	reply.UpdateOption(dhcpv4.OptMessage(reason))
	reply.SetBroadcast()
	return reply
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
