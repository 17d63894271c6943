package dhcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/dhcpv6/server6"
	"github.com/insomniacslk/dhcp/iana"
	"golang.org/x/net/ipv6"
)

// DHCPv6 ports.
const (
	PortDHCP6Client = 546
	PortDHCP6Server = 547
)

// Server6 is the DHCPv6 boot server of one interface: addresses (stateful)
// or configuration only (stateless), and the boot file URL (option 59) for
// UEFI HTTP boot and iPXE.
type Server6 struct {
	cfg    Config6
	nodes  Nodes
	leases Leases6
	log    *slog.Logger
	duid   dhcpv6.DUID

	// mu serialises address decisions and guards the fields below.
	mu       sync.Mutex
	cursor   uint64 // low 64 bits of the next address to try
	declined map[netip.Addr]time.Time
}

// New6 checks cfg and returns a Server6. ServerIP and ServerDUID left
// empty are read from the interface, so New6 must then run where the
// interface is (its network namespace). leases may be nil in stateless mode.
func New6(cfg Config6, nodes Nodes, leases Leases6, log *slog.Logger) (*Server6, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("dhcpv6 config: %w", err)
	}
	if nodes == nil {
		return nil, errors.New("dhcpv6: nodes lookup is required")
	}
	if cfg.Mode == Mode6Stateful && leases == nil {
		return nil, errors.New("dhcpv6: stateful mode needs a lease store")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	if !cfg.ServerIP.IsValid() || cfg.ServerDUID == nil {
		ip, mac, err := interfaceIPv6(cfg.Interface, cfg.Prefix)
		if err != nil {
			return nil, err
		}
		if !cfg.ServerIP.IsValid() {
			cfg.ServerIP = ip
		}
		if cfg.ServerDUID == nil {
			cfg.ServerDUID = (&dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: mac}).ToBytes()
		}
	}
	duid, err := dhcpv6.DUIDFromBytes(cfg.ServerDUID)
	if err != nil {
		return nil, fmt.Errorf("dhcpv6: server DUID: %w", err)
	}
	if cfg.Mode == Mode6Stateful && cfg.ServerIP.IsValid() && inRange6(cfg.Subnet6, cfg.ServerIP) && cfg.RangeStart == cfg.RangeEnd {
		return nil, fmt.Errorf("dhcpv6: range %v..%v is only the server's own address", cfg.RangeStart, cfg.RangeEnd)
	}
	return &Server6{cfg: cfg, nodes: nodes, leases: leases, log: log, duid: duid,
		cursor: lo64(cfg.RangeStart), declined: make(map[netip.Addr]time.Time)}, nil
}

// Config returns the configuration in force, defaults filled in.
func (s *Server6) Config() Config6 { return s.cfg }

// interfaceIPv6 returns the interface's first address inside prefix (or
// its first global/unique-local one) and its MAC address.
func interfaceIPv6(name string, prefix netip.Prefix) (netip.Addr, net.HardwareAddr, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return netip.Addr{}, nil, fmt.Errorf("dhcpv6 interface %q: %w", name, err)
	}
	if len(ifi.HardwareAddr) == 0 {
		return netip.Addr{}, nil, fmt.Errorf("dhcpv6 interface %q has no link-layer address for the server DUID", name)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, nil, fmt.Errorf("addresses of %q: %w", name, err)
	}
	var other netip.Addr
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok || n.IP.To4() != nil {
			continue
		}
		ip, ok := netip.AddrFromSlice(n.IP)
		if !ok || ip.IsLinkLocalUnicast() || ip.IsLoopback() {
			continue
		}
		if prefix.Contains(ip) {
			return ip, ifi.HardwareAddr, nil
		}
		if !other.IsValid() {
			other = ip
		}
	}
	if !other.IsValid() {
		return netip.Addr{}, nil, fmt.Errorf("dhcpv6 interface %q has no global or unique-local IPv6 address (want one in %v)", name, prefix)
	}
	return other, ifi.HardwareAddr, nil
}

type packet6 struct {
	data []byte
	peer *net.UDPAddr
}

// Serve answers DHCPv6 on the interface until ctx is cancelled, then
// returns nil. It opens its socket (UDP port 547 bound to the interface,
// joined to ff02::1:2) before any goroutine starts, so a caller may run it
// on a thread set into the interface's network namespace.
func (s *Server6) Serve(ctx context.Context) error {
	ifi, err := net.InterfaceByName(s.cfg.Interface)
	if err != nil {
		return fmt.Errorf("dhcpv6 interface %q: %w", s.cfg.Interface, err)
	}
	conn, err := server6.NewIPv6UDPConn(s.cfg.Interface, &net.UDPAddr{IP: net.IPv6unspecified, Port: PortDHCP6Server})
	if err != nil {
		return fmt.Errorf("listen on %s port %d: %w", s.cfg.Interface, PortDHCP6Server, err)
	}
	if err := ipv6.NewPacketConn(conn).JoinGroup(ifi, &net.UDPAddr{IP: dhcpv6.AllDHCPRelayAgentsAndServers}); err != nil {
		conn.Close()
		return fmt.Errorf("join ff02::1:2 on %s: %w", s.cfg.Interface, err)
	}
	s.log.InfoContext(ctx, "dhcpv6 serving", keyIface, s.cfg.Interface, keyMode, string(s.cfg.Mode), keyIP, s.cfg.ServerIP.String(), keyPrefix, s.cfg.Prefix.String())
	jobs := make(chan packet6, s.cfg.Workers*queuePerWorker)
	var workers sync.WaitGroup
	for range s.cfg.Workers {
		workers.Go(func() {
			for p := range jobs {
				s.serveOne(ctx, conn, p)
			}
		})
	}
	errc := make(chan error, 1)
	go func() {
		defer close(jobs)
		for {
			buf := make([]byte, 1500)
			n, peer, err := conn.ReadFromUDP(buf)
			if err != nil {
				if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
					errc <- nil
				} else {
					errc <- fmt.Errorf("read port %d: %w", PortDHCP6Server, err)
				}
				return
			}
			select {
			case jobs <- packet6{data: buf[:n], peer: peer}:
			default:
				s.log.DebugContext(ctx, "queue full; dropping packet", keyPeer, peer.String())
			}
		}
	}()
	select {
	case <-ctx.Done():
		err = nil
	case err = <-errc:
	}
	conn.Close()
	workers.Wait()
	return err
}

func (s *Server6) serveOne(ctx context.Context, conn *net.UDPConn, p packet6) {
	req, err := dhcpv6.FromBytes(p.data)
	if err != nil {
		s.log.DebugContext(ctx, "dropping bad packet", keyPeer, p.peer.String(), keyErr, err)
		return
	}
	peer, _ := netip.AddrFromSlice(p.peer.IP)
	peer = peer.WithZone(p.peer.Zone)
	answered := false
	if s.cfg.OnRequest != nil {
		defer func() { s.cfg.OnRequest(innerType(req).String(), answered) }()
	}
	reply, err := s.Handle(ctx, req, peer)
	if err != nil {
		s.log.ErrorContext(ctx, "handle request", keyPeer, p.peer.String(), keyErr, err)
		return
	}
	if reply == nil {
		return
	}
	if _, err := conn.WriteToUDP(reply.ToBytes(), p.peer); err != nil {
		s.log.WarnContext(ctx, "send reply", keyPeer, p.peer.String(), keyErr, err)
		return
	}
	answered = true
}

// innerType is the type of the client message inside any relay messages.
func innerType(m dhcpv6.DHCPv6) dhcpv6.MessageType {
	if in, err := m.GetInnerMessage(); err == nil {
		return in.Type()
	}
	return m.Type()
}
