package dhcp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"golang.org/x/net/ipv4"
)

// Log attribute keys.
const (
	keyMAC     = "mac"
	keyIP      = "ip"
	keyNode    = "node"
	keyOther   = "other_mac"
	keyRelay   = "giaddr"
	keyServer  = "server_id"
	keyType    = "msg_type"
	keyKnown   = "known"
	keyNetBoot = "netboot"
	keyVIF     = "vif"
	keyArch    = "arch"
	keyFile    = "boot_file"
	keyPeer    = "peer"
	keyIface   = "interface"
	keyMode    = "mode"
	keyErr     = "err"
	keyPrefix  = "prefix"
	keySubnet  = "subnet"
)

// queuePerWorker bounds the packets waiting for a worker; more are dropped
// (DHCP clients retry).
const queuePerWorker = 64

// Server is the DHCPv4 boot server of one interface.
type Server struct {
	cfg    Config
	nodes  Nodes
	leases Leases
	log    *slog.Logger

	// attached is the subnet on the interface; relayed are those behind relays.
	attached *pool
	relayed  []*pool
}

// New checks cfg, fills in its defaults and returns a Server. ServerIP and
// Netmask left empty are read from the interface, so New must then run
// where the interface is (its network namespace). leases may be nil in
// proxy mode.
func New(cfg Config, nodes Nodes, leases Leases, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("dhcp config: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, nodes: nodes, leases: leases, log: log}
	if cfg.Mode == ModeOff {
		return s, nil
	}
	if nodes == nil {
		return nil, errors.New("dhcp: nodes lookup is required")
	}
	if cfg.Mode == ModeFull && leases == nil {
		return nil, errors.New("dhcp: full mode needs a lease store")
	}
	cfg = cfg.withDefaults()
	if cfg.ServerIP == nil || cfg.Netmask == nil {
		ip, mask, err := interfaceIPv4(cfg.Interface)
		if err != nil {
			return nil, err
		}
		if cfg.ServerIP == nil {
			cfg.ServerIP = ip
		}
		if cfg.Netmask == nil {
			cfg.Netmask = mask
		}
	}
	cfg.ServerIP = cfg.ServerIP.To4()
	if cfg.TFTPServer == nil {
		cfg.TFTPServer = cfg.ServerIP
	}
	cfg.TFTPServer = cfg.TFTPServer.To4()
	if ones, _ := cfg.Netmask.Size(); ones < 8 {
		return nil, fmt.Errorf("dhcp: netmask %v is wider than /8", cfg.Netmask)
	}
	mask := binary.BigEndian.Uint32(cfg.Netmask)
	s.cfg = cfg
	s.attached = &pool{network: ipToU32(cfg.ServerIP) & mask, mask: mask, netmask: cfg.Netmask,
		router: cfg.Router.To4(), dns: cfg.DNS, mtu: cfg.MTU, leaseTime: cfg.LeaseTime}
	if cfg.Mode == ModeFull {
		s.attached.rangeStart, s.attached.rangeEnd = ipToU32(cfg.RangeStart), ipToU32(cfg.RangeEnd)
		if !s.inSubnet(cfg.RangeStart) || !s.inSubnet(cfg.RangeEnd) {
			return nil, fmt.Errorf("dhcp: range %v..%v is not inside %v/%v", cfg.RangeStart, cfg.RangeEnd, u32ToIP(s.attached.network), net.IP(cfg.Netmask))
		}
		s.attached.cursor = s.attached.rangeStart
	}
	for _, sn := range cfg.Subnets {
		p := newRelayedPool(sn, cfg.LeaseTime)
		if p.contains(cfg.ServerIP) || s.attached.contains(sn.Network.IP) {
			return nil, fmt.Errorf("dhcp: relayed subnet %v is the interface's own subnet %v: serve it as the attached subnet", sn.Network, s.attached)
		}
		s.relayed = append(s.relayed, p)
	}
	return s, nil
}

// Config returns the configuration in force, defaults filled in.
func (s *Server) Config() Config { return s.cfg }

// interfaceIPv4 returns the first IPv4 address of the interface and its mask.
func interfaceIPv4(name string) (net.IP, net.IPMask, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil, nil, fmt.Errorf("dhcp interface %q: %w", name, err)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return nil, nil, fmt.Errorf("addresses of %q: %w", name, err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			return n.IP.To4(), net.IPMask(n.Mask[len(n.Mask)-4:]), nil
		}
	}
	return nil, nil, fmt.Errorf("dhcp interface %q has no IPv4 address", name)
}

type packet struct {
	data []byte
	peer *net.UDPAddr
	port int
	l    *listener
}

// listener is one socket and how replies leave through it.
type listener struct {
	conn *net.UDPConn
	port int
	// pc and cm set the source address of replies when the socket is
	// bound to the broadcast address (proxy mode, port 67), from which
	// the kernel could not pick one.
	pc *ipv4.PacketConn
	cm *ipv4.ControlMessage
}

func (l *listener) write(b []byte, dst *net.UDPAddr) error {
	if l.pc != nil {
		_, err := l.pc.WriteTo(b, l.cm, dst)
		return err
	}
	_, err := l.conn.WriteToUDP(b, dst)
	return err
}

// Serve answers DHCP on the interface until ctx is cancelled, then returns
// nil; it returns an error if it cannot open its sockets or reading fails.
// It opens its sockets (bound to the interface with SO_BINDTODEVICE, port
// 67, and 4011 in proxy mode) before it starts any goroutine, so a caller
// may run it on a thread set into the interface's network namespace.
//
// In proxy mode port 67 is bound to 255.255.255.255: the socket receives
// only broadcasts (PXE DISCOVERs), so a DHCP server on the same host and
// interface (dnsmasq binds 0.0.0.0:67 with SO_REUSEPORT) still gets every
// unicast renewal addressed to it. Relays send to the server's own address,
// so with relayed subnets proxy mode also binds ServerIP:67: a site DHCP
// server on the same host must then listen on another address.
func (s *Server) Serve(ctx context.Context) error {
	if s.cfg.Mode == ModeOff {
		return nil
	}
	addrs := []*net.UDPAddr{{IP: net.IPv4zero, Port: PortDHCP}}
	if s.cfg.Mode == ModeProxy {
		addrs = []*net.UDPAddr{{IP: net.IPv4bcast, Port: PortDHCP}, {IP: net.IPv4zero, Port: PortPXE}}
		if len(s.relayed) > 0 || s.cfg.Relayed {
			addrs = append(addrs, &net.UDPAddr{IP: s.cfg.ServerIP, Port: PortDHCP})
		}
	}
	var ls []*listener
	closeAll := func() {
		for _, l := range ls {
			l.conn.Close()
		}
	}
	for _, a := range addrs {
		c, err := server4.NewIPv4UDPConn(s.cfg.Interface, a)
		if err != nil {
			closeAll()
			return fmt.Errorf("listen on %s %v: %w", s.cfg.Interface, a, err)
		}
		l := &listener{conn: c, port: a.Port}
		if a.IP.Equal(net.IPv4bcast) {
			l.pc = ipv4.NewPacketConn(c)
			l.cm = &ipv4.ControlMessage{Src: s.cfg.ServerIP}
		}
		ls = append(ls, l)
	}
	s.log.InfoContext(ctx, "dhcp serving", keyIface, s.cfg.Interface, keyMode, string(s.cfg.Mode), keyIP, s.cfg.ServerIP.String())

	jobs := make(chan packet, s.cfg.Workers*queuePerWorker)
	var workers, readers sync.WaitGroup
	for range s.cfg.Workers {
		workers.Go(func() {
			for p := range jobs {
				s.serveOne(ctx, p)
			}
		})
	}
	errc := make(chan error, len(ls))
	for _, l := range ls {
		readers.Go(func() { errc <- s.read(ctx, l, jobs) })
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	closeAll()
	readers.Wait()
	close(jobs)
	workers.Wait()
	return err
}

// read reads packets from l into jobs until l is closed.
func (s *Server) read(ctx context.Context, l *listener, jobs chan<- packet) error {
	for {
		buf := make([]byte, 1500)
		n, peer, err := l.conn.ReadFromUDP(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("read port %d: %w", l.port, err)
		}
		select {
		case jobs <- packet{data: buf[:n], peer: peer, port: l.port, l: l}:
		default:
			s.log.DebugContext(ctx, "queue full; dropping packet", keyPeer, peer.String())
		}
	}
}

func (s *Server) serveOne(ctx context.Context, p packet) {
	req, err := dhcpv4.FromBytes(p.data)
	if err != nil {
		s.log.DebugContext(ctx, "dropping bad packet", keyPeer, p.peer.String(), keyErr, err)
		return
	}
	answered := false
	if s.cfg.OnRequest != nil {
		defer func() { s.cfg.OnRequest(req.MessageType().String(), answered) }()
	}
	reply, err := s.Handle(ctx, req, p.port)
	if err != nil {
		s.log.ErrorContext(ctx, "handle request", keyMAC, req.ClientHWAddr.String(), keyErr, err)
		return
	}
	if reply == nil {
		return
	}
	dst := s.destination(req, reply, p)
	if err := p.l.write(reply.ToBytes(), dst); err != nil {
		s.log.WarnContext(ctx, "send reply", keyMAC, req.ClientHWAddr.String(), keyPeer, dst.String(), keyErr, err)
		return
	}
	answered = true
}

// destination is where reply goes (RFC 2131 4.1): to the relay, to the
// sender of a port-4011 request, unicast to a client that has its address
// (ciaddr) in a subnet the server serves, else broadcast on the interface.
func (s *Server) destination(req, reply *dhcpv4.DHCPv4, p packet) *net.UDPAddr {
	if gi := req.GatewayIPAddr; gi != nil && !gi.IsUnspecified() {
		return &net.UDPAddr{IP: gi, Port: dhcpv4.ServerPort}
	}
	if p.port == PortPXE && p.peer != nil && !p.peer.IP.IsUnspecified() {
		return p.peer
	}
	if ci := req.ClientIPAddr; ci != nil && !ci.IsUnspecified() && s.ours(ci) && reply.MessageType() != dhcpv4.MessageTypeNak {
		return &net.UDPAddr{IP: ci, Port: dhcpv4.ClientPort}
	}
	return &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ClientPort}
}
