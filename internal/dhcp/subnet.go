package dhcp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// Subnet is a network whose clients reach the server through DHCP relays (a top-of-rack
// switch forwarding to the server's address): a relayed request is served from the subnet
// that holds its giaddr, the relay's address on the client's network.
type Subnet struct {
	// Network is the subnet, e.g. 10.1.0.0/24.
	Network *net.IPNet
	// RangeStart..RangeEnd (inclusive) are the addresses handed out (full mode).
	RangeStart, RangeEnd net.IP
	// Router is option 3; default the relay's giaddr, the usual gateway of a rack.
	Router net.IP
	DNS    []net.IP // option 6, optional
	// MTU is option 26; 0 sends none.
	MTU int
	// LeaseTime defaults to the server's.
	LeaseTime time.Duration
}

// pool is a subnet the server answers for: the one on its interface, or one behind relays.
type pool struct {
	network, mask                uint32
	netmask                      net.IPMask
	rangeStart, rangeEnd, cursor uint32
	router                       net.IP // nil: none, or the giaddr for a relayed pool
	dns                          []net.IP
	mtu                          int
	leaseTime                    time.Duration
	relayed                      bool

	// mu serialises the pool's address decisions (pick and commit) and guards cursor and
	// declined: racks are allocated in parallel, each address belonging to one pool.
	mu       sync.Mutex
	declined map[uint32]time.Time // addresses clients declined, held back until then
}

// contains reports whether ip is a host address of the pool's network (not its network or
// broadcast address).
func (p *pool) contains(ip net.IP) bool {
	ip4 := ip.To4()
	if ip4 == nil {
		return false
	}
	v := ipToU32(ip4)
	if v&p.mask != p.network {
		return false
	}
	host := v &^ p.mask
	return p.mask == 0xffffffff || p.mask == 0xfffffffe || (host != 0 && host != ^p.mask)
}

func (p *pool) inRange(ip net.IP) bool {
	v := ipToU32(ip)
	return ip.To4() != nil && v >= p.rangeStart && v <= p.rangeEnd
}

func (p *pool) String() string {
	return fmt.Sprintf("%v/%d", u32ToIP(p.network), maskOnes(p.netmask))
}

func maskOnes(m net.IPMask) int {
	ones, _ := m.Size()
	return ones
}

// newRelayedPool turns a validated Subnet into a pool.
func newRelayedPool(sn Subnet, leaseTime time.Duration) *pool {
	mask := net.IPMask(sn.Network.Mask[len(sn.Network.Mask)-net.IPv4len:])
	p := &pool{
		mask: binary.BigEndian.Uint32(mask), netmask: mask,
		rangeStart: ipToU32(sn.RangeStart), rangeEnd: ipToU32(sn.RangeEnd),
		dns: sn.DNS, mtu: sn.MTU, leaseTime: sn.LeaseTime, relayed: true,
	}
	p.network = ipToU32(sn.Network.IP) & p.mask
	p.cursor = p.rangeStart
	if sn.Router != nil {
		p.router = sn.Router.To4()
	}
	if p.leaseTime == 0 {
		p.leaseTime = leaseTime
	}
	return p
}

// ValidateSubnets checks the relayed subnets of a server in mode whose attached range is
// rangeStart..rangeEnd (nil in proxy mode), naming every problem; New checks them too.
func ValidateSubnets(mode Mode, subnets []Subnet, rangeStart, rangeEnd net.IP) error {
	return errors.Join(validateSubnets(mode, subnets, rangeStart, rangeEnd)...)
}

// validateSubnets checks the relayed subnets of a server in mode: each an IPv4 network of /8
// or smaller, its range (full mode) inside it and in order, its router inside it, and no two
// networks, or a range and the attached range, overlapping. Every problem is named.
func validateSubnets(mode Mode, subnets []Subnet, attachedStart, attachedEnd net.IP) []error {
	var errs []error
	type span struct {
		name       string
		start, end uint32
	}
	var nets, ranges []span
	if mode == ModeFull && attachedStart.To4() != nil && attachedEnd.To4() != nil {
		ranges = append(ranges, span{"the attached range", ipToU32(attachedStart), ipToU32(attachedEnd)})
	}
	for i, sn := range subnets {
		name := fmt.Sprintf("subnet %d", i+1)
		if sn.Network == nil || sn.Network.IP.To4() == nil || len(sn.Network.Mask) < net.IPv4len {
			errs = append(errs, fmt.Errorf("%s: network must be an IPv4 CIDR such as 10.1.0.0/24", name))
			continue
		}
		mask := net.IPMask(sn.Network.Mask[len(sn.Network.Mask)-net.IPv4len:])
		ones, bits := mask.Size()
		if bits == 0 || ones < 8 || ones > 30 {
			errs = append(errs, fmt.Errorf("%s %v: the prefix must be /8 to /30", name, sn.Network))
			continue
		}
		name = fmt.Sprintf("subnet %v", sn.Network)
		p := newRelayedPool(sn, time.Hour)
		nets = append(nets, span{name, p.network, p.network | ^p.mask})
		if sn.Router != nil && !p.contains(sn.Router) {
			errs = append(errs, fmt.Errorf("%s: router %v is not a host address inside it", name, sn.Router))
		}
		for _, d := range sn.DNS {
			if d.To4() == nil {
				errs = append(errs, fmt.Errorf("%s: DNS server %v is not IPv4", name, d))
			}
		}
		if sn.MTU != 0 && (sn.MTU < 68 || sn.MTU > 65535) {
			errs = append(errs, fmt.Errorf("%s: MTU %d is outside 68..65535", name, sn.MTU))
		}
		if sn.LeaseTime < 0 {
			errs = append(errs, fmt.Errorf("%s: lease time must not be negative", name))
		}
		if mode != ModeFull {
			continue
		}
		s, e := sn.RangeStart.To4(), sn.RangeEnd.To4()
		switch {
		case s == nil || e == nil:
			errs = append(errs, fmt.Errorf("%s: range %v..%v: both ends must be IPv4 (full mode hands out addresses)", name, sn.RangeStart, sn.RangeEnd))
			continue
		case ipToU32(s) > ipToU32(e):
			errs = append(errs, fmt.Errorf("%s: range %v..%v: start is after end", name, s, e))
			continue
		case !p.contains(s) || !p.contains(e):
			errs = append(errs, fmt.Errorf("%s: range %v..%v is not inside the subnet", name, s, e))
			continue
		}
		ranges = append(ranges, span{name + "'s range", ipToU32(s), ipToU32(e)})
	}
	overlaps := func(what string, spans []span) {
		for i := range spans {
			for j := i + 1; j < len(spans); j++ {
				if spans[i].start <= spans[j].end && spans[j].start <= spans[i].end {
					errs = append(errs, fmt.Errorf("%s and %s overlap (%s)", spans[i].name, spans[j].name, what))
				}
			}
		}
	}
	overlaps("networks", nets)
	overlaps("address ranges", ranges)
	return errs
}

// errUnknownSubnet: a relayed request whose giaddr lies in no subnet the server serves.
var errUnknownSubnet = errors.New("relayed from a subnet this server does not serve")

// poolFor returns the pool a request is served from: the relayed subnet holding its giaddr,
// or, for a request that came straight to the server, the relayed subnet holding its ciaddr
// (a client renewing by unicast through its router) or else the attached subnet. A relayed
// request from an unknown subnet gets errUnknownSubnet.
func (s *Server) poolFor(req *dhcpv4.DHCPv4) (*pool, error) {
	if gi := req.GatewayIPAddr; gi != nil && !gi.IsUnspecified() {
		for _, p := range s.relayed {
			if p.contains(gi) {
				return p, nil
			}
		}
		if s.cfg.Relayed && s.attached.contains(gi) {
			return s.attached, nil
		}
		return nil, errUnknownSubnet
	}
	if ci := req.ClientIPAddr; ci != nil && !ci.IsUnspecified() {
		for _, p := range s.relayed {
			if p.contains(ci) {
				return p, nil
			}
		}
	}
	return s.attached, nil
}

// routerFor is option 3 of a reply from p: its router, or for a relayed pool without one the
// relay's own address, which is the rack's gateway.
func routerFor(p *pool, req *dhcpv4.DHCPv4) net.IP {
	if p.router != nil {
		return p.router
	}
	if gi := req.GatewayIPAddr.To4(); p.relayed && gi != nil && !gi.IsUnspecified() {
		return gi
	}
	return nil
}
