package vbmc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/net/ipv4"
)

// IPMIMux serves many virtual BMCs on one UDP socket: each BMC has an IPv4 address of its own
// (127.x.y.z on loopback, or any address of a network namespace) at the socket's port. A
// datagram goes to the BMC of its destination address (IP_PKTINFO) and the BMC's answer leaves
// from that address, so a fleet of 10,000 BMCs costs one file descriptor instead of 10,000.
// Answers can be delayed by a fixed latency, as a real BMC's would be.
type IPMIMux struct {
	// Received, when set before Serve, is called with the BMC address of every datagram
	// routed (benchmarks record when each BMC was last read).
	Received func(netip.Addr)

	conn  *net.UDPConn
	pc    *ipv4.PacketConn
	port  int
	delay time.Duration
	mu    sync.RWMutex
	bmcs  map[netip.Addr]*muxConn
	wg    sync.WaitGroup // delayed answers not yet sent
	// closed is set by Close under mu; WriteTo adds to wg only under mu while it is false.
	closed bool
}

// muxQueue is how many datagrams wait for one BMC before more are dropped (as a busy BMC
// drops them): a client resends what gets no answer.
const muxQueue = 32

// ListenIPMIMux binds addr (host:port; a host of 0.0.0.0 receives for every local address,
// which only a network namespace of the caller's own should do) and answers after delay.
func ListenIPMIMux(addr string, delay time.Duration) (*IPMIMux, error) {
	ua, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		return nil, fmt.Errorf("resolve %q: %w", addr, err)
	}
	conn, err := net.ListenUDP("udp4", ua)
	if err != nil {
		return nil, fmt.Errorf("listen for IPMI on %s: %w", addr, err)
	}
	pc := ipv4.NewPacketConn(conn)
	if err := pc.SetControlMessage(ipv4.FlagDst, true); err != nil {
		conn.Close()
		return nil, fmt.Errorf("ask for the destination address of datagrams: %w", err)
	}
	return &IPMIMux{conn: conn, pc: pc, port: conn.LocalAddr().(*net.UDPAddr).Port, delay: delay,
		bmcs: map[netip.Addr]*muxConn{}}, nil
}

// Port is the UDP port every BMC of the mux answers on.
func (m *IPMIMux) Port() int { return m.port }

// bmcConn returns the packet transport of the BMC at ip (one per address).
func (m *IPMIMux) bmcConn(ip netip.Addr) (*muxConn, error) {
	if !ip.Is4() {
		return nil, fmt.Errorf("IPMI mux address %s: only IPv4 addresses", ip)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.bmcs[ip] != nil {
		return nil, fmt.Errorf("IPMI mux address %s: already taken", ip)
	}
	c := &muxConn{m: m, ip: ip, in: make(chan muxPacket, muxQueue), done: make(chan struct{})}
	m.bmcs[ip] = c
	return c, nil
}

// Serve routes datagrams to their BMCs until ctx ends or the mux is closed.
func (m *IPMIMux) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { m.conn.Close() })
	defer stop()
	buf := make([]byte, 4096)
	for {
		n, cm, src, err := m.pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("read IPMI datagram: %w", err)
		}
		if cm == nil {
			continue
		}
		dst, ok := netip.AddrFromSlice(cm.Dst.To4())
		if !ok {
			continue
		}
		m.mu.RLock()
		c := m.bmcs[dst]
		m.mu.RUnlock()
		if c == nil {
			continue
		}
		if m.Received != nil {
			m.Received(dst)
		}
		pkt := muxPacket{data: append([]byte(nil), buf[:n]...), from: src}
		select {
		case c.in <- pkt:
		default: // the BMC is busy: drop, as a real one would
		}
	}
}

// Close stops the mux, closes every BMC's transport and waits for the delayed answers (which
// the closed socket no longer sends).
func (m *IPMIMux) Close() error {
	err := m.conn.Close()
	m.mu.Lock()
	m.closed = true
	for ip, c := range m.bmcs {
		c.closeOnce.Do(func() { close(c.done) })
		delete(m.bmcs, ip)
	}
	m.mu.Unlock()
	m.wg.Wait()
	return err
}

type muxPacket struct {
	data []byte
	from net.Addr
}

// muxConn is one BMC's view of the mux: go-ipmi's transport.PacketConn.
type muxConn struct {
	m         *IPMIMux
	ip        netip.Addr
	in        chan muxPacket
	done      chan struct{}
	closeOnce sync.Once
}

// ReadFrom returns the next datagram sent to this BMC.
func (c *muxConn) ReadFrom(buf []byte) (int, net.Addr, error) {
	select {
	case p := <-c.in:
		return copy(buf, p.data), p.from, nil
	case <-c.done:
		return 0, nil, net.ErrClosed
	}
}

// WriteTo sends data to addr from this BMC's address, after the mux's latency.
func (c *muxConn) WriteTo(data []byte, addr net.Addr) (int, error) {
	select {
	case <-c.done:
		return 0, net.ErrClosed
	default:
	}
	cm := &ipv4.ControlMessage{Src: c.ip.AsSlice()}
	if c.m.delay <= 0 {
		return c.m.pc.WriteTo(data, cm, addr)
	}
	out := append([]byte(nil), data...)
	c.m.mu.RLock()
	defer c.m.mu.RUnlock()
	if c.m.closed { // no Add once Close may be waiting
		return 0, net.ErrClosed
	}
	c.m.wg.Add(1)
	time.AfterFunc(c.m.delay, func() {
		defer c.m.wg.Done()
		_, _ = c.m.pc.WriteTo(out, cm, addr)
	})
	return len(data), nil
}

// Close ends this BMC's transport (the mux's socket stays open for the others).
func (c *muxConn) Close() error {
	c.closeOnce.Do(func() { close(c.done) })
	c.m.mu.Lock()
	if c.m.bmcs[c.ip] == c {
		delete(c.m.bmcs, c.ip)
	}
	c.m.mu.Unlock()
	return nil
}

// LocalAddr is the BMC's address and the mux's port.
func (c *muxConn) LocalAddr() net.Addr {
	return &net.UDPAddr{IP: c.ip.AsSlice(), Port: c.m.port}
}
