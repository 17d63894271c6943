package tftp

import (
	"log/slog"
	"net"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// listener reads requests from the server's socket and learns the address each one was sent to,
// so a transfer's socket can be bound to it: a client only accepts replies from the address it
// asked. When the socket is bound to one address that is the answer. When it is bound to a
// wildcard address, the destination comes from IP_PKTINFO / IPV6_PKTINFO control messages
// (golang.org/x/net); where those are unavailable (a PacketConn that is not a *net.UDPConn, or a
// platform without them) dst is nil and the kernel picks the source address by route, which is
// right on single-homed hosts and loopback.
type listener struct {
	conn  net.PacketConn
	bound net.IP           // the socket's specific address; nil for a wildcard
	p4    *ipv4.PacketConn // reads with destinations from an IPv4 wildcard socket
	p6    *ipv6.PacketConn // reads with destinations from an IPv6 (dual-stack) wildcard socket
	w4    *ipv4.PacketConn // replies to IPv4 clients from a chosen source
	w6    *ipv6.PacketConn // replies to IPv6 clients from a chosen source
}

func newListener(conn net.PacketConn, log *slog.Logger) *listener {
	l := &listener{conn: conn}
	uc, ok := conn.(*net.UDPConn)
	if !ok {
		if a, ok := conn.LocalAddr().(*net.UDPAddr); ok && !a.IP.IsUnspecified() {
			l.bound = a.IP
		}
		return l
	}
	la, _ := uc.LocalAddr().(*net.UDPAddr)
	if la != nil && la.IP != nil && !la.IP.IsUnspecified() {
		l.bound = la.IP
		return l
	}
	// Replies to IPv4 clients set their source with IP_PKTINFO, also on a dual-stack IPv6
	// socket (x/net/ipv6 will not put a v4-mapped source in IPV6_PKTINFO).
	l.w4, l.w6 = ipv4.NewPacketConn(uc), ipv6.NewPacketConn(uc)
	if la != nil && la.IP.To4() != nil {
		if err := l.w4.SetControlMessage(ipv4.FlagDst|ipv4.FlagInterface, true); err == nil {
			l.p4 = l.w4
			return l
		}
	}
	if err := l.w6.SetControlMessage(ipv6.FlagDst|ipv6.FlagInterface, true); err == nil {
		l.p6 = l.w6
		return l
	}
	l.w4, l.w6 = nil, nil
	log.Warn("tftp cannot learn request destinations on a wildcard socket; transfers use the routed source address",
		keyLocal, uc.LocalAddr().String())
	return l
}

// read returns one datagram, its source and the address it was sent to (nil when unknown).
func (l *listener) read(b []byte) (n int, src net.Addr, dst *net.UDPAddr, err error) {
	switch {
	case l.p4 != nil:
		var cm *ipv4.ControlMessage
		n, cm, src, err = l.p4.ReadFrom(b)
		if cm != nil && cm.Dst != nil {
			dst = &net.UDPAddr{IP: cm.Dst}
		}
	case l.p6 != nil:
		var cm *ipv6.ControlMessage
		n, cm, src, err = l.p6.ReadFrom(b)
		if cm != nil && cm.Dst != nil {
			dst = &net.UDPAddr{IP: cm.Dst}
			if cm.Dst.To4() == nil && cm.Dst.IsLinkLocalUnicast() {
				if ifi, ierr := net.InterfaceByIndex(cm.IfIndex); ierr == nil {
					dst.Zone = ifi.Name
				}
			}
		}
	default:
		n, src, err = l.conn.ReadFrom(b)
		if l.bound != nil {
			dst = &net.UDPAddr{IP: l.bound}
		}
	}
	return n, src, dst, err
}

// reply sends p (an ERROR) from the listening socket to src, from the address src used.
func (l *listener) reply(p []byte, src net.Addr, dst *net.UDPAddr) {
	switch {
	case dst == nil || l.w4 == nil:
	case dst.IP.To4() != nil:
		if _, err := l.w4.WriteTo(p, &ipv4.ControlMessage{Src: dst.IP}, src); err == nil {
			return
		}
	default:
		if _, err := l.w6.WriteTo(p, &ipv6.ControlMessage{Src: dst.IP}, src); err == nil {
			return
		}
	}
	l.conn.WriteTo(p, src)
}
