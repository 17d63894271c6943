package dhcp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"
)

// maxCommitAttempts bounds how often an offer picks again when other servers on the lease
// store take the addresses it chose.
const maxCommitAttempts = 8

// errNoAddress: the range has no address left for this MAC.
var errNoAddress = errors.New("no free address in range")

func ipToU32(ip net.IP) uint32 {
	ip4 := ip.To4()
	if ip4 == nil {
		return 0
	}
	return binary.BigEndian.Uint32(ip4)
}

func u32ToIP(v uint32) net.IP {
	ip := make(net.IP, net.IPv4len)
	binary.BigEndian.PutUint32(ip, v)
	return ip
}

// inSubnet reports whether ip is a host address of the attached subnet (not
// its network or broadcast address).
func (s *Server) inSubnet(ip net.IP) bool { return s.attached.contains(ip) }

// ours reports whether ip is a host address of a subnet the server serves.
func (s *Server) ours(ip net.IP) bool {
	if s.attached.contains(ip) {
		return true
	}
	for _, p := range s.relayed {
		if p.contains(ip) {
			return true
		}
	}
	return false
}

// validStatic reports whether c's static address can be given out in p.
func (s *Server) validStatic(p *pool, c Client) bool {
	return c.StaticIP.To4() != nil && p.contains(c.StaticIP) && !c.StaticIP.Equal(s.cfg.ServerIP)
}

// usable reports whether ip may be given to mac now: in p's range, not the
// server's or router's, not declined, not another port's static address, and
// not actively leased to another MAC. p.mu must be held.
func (s *Server) usable(ctx context.Context, p *pool, ip net.IP, mac net.HardwareAddr, now time.Time) (bool, error) {
	if !p.inRange(ip) || !p.contains(ip) || ip.Equal(s.cfg.ServerIP) || ip.Equal(p.router) {
		return false, nil
	}
	key := ipToU32(ip)
	if until, ok := p.declined[key]; ok {
		if now.Before(until) {
			return false, nil
		}
		delete(p.declined, key)
	}
	if so, ok := s.nodes.(StaticOwners); ok {
		owner, found, err := so.StaticOwner(ctx, ip)
		if err != nil {
			return false, fmt.Errorf("look up static owner of %v: %w", ip, err)
		}
		if found && owner.String() != mac.String() {
			return false, nil
		}
	}
	l, found, err := s.leases.ByIP(ctx, ip)
	if err != nil {
		return false, fmt.Errorf("look up lease of %v: %w", ip, err)
	}
	return !found || l.MAC.String() == mac.String() || !l.Active(now), nil
}

// pick chooses the address to offer mac: its static address, else the
// address it had (even expired) if still usable, else the one it asks for,
// else the next usable one after the allocation cursor. It also returns the
// MAC's lease on p, if it has one. p.mu must be held.
func (s *Server) pick(ctx context.Context, p *pool, mac net.HardwareAddr, c Client, requested net.IP, now time.Time) (net.IP, *Lease, error) {
	prev, found, err := s.leases.Lease(ctx, p.String(), mac)
	if err != nil {
		return nil, nil, fmt.Errorf("look up lease: %w", err)
	}
	var held *Lease
	if found {
		held = &prev
	}
	if c.StaticIP.To4() != nil {
		if s.validStatic(p, c) {
			return c.StaticIP.To4(), held, nil
		}
		s.log.WarnContext(ctx, "static address outside the client's subnet; using the range",
			keyMAC, mac.String(), keyIP, c.StaticIP.String(), keySubnet, p.String())
	}
	if found {
		ok, err := s.usable(ctx, p, prev.IP, mac, now)
		if err != nil {
			return nil, nil, err
		}
		if ok {
			return prev.IP.To4(), held, nil
		}
	}
	if requested.To4() != nil {
		ok, err := s.usable(ctx, p, requested, mac, now)
		if err != nil {
			return nil, nil, err
		}
		if ok {
			return requested.To4(), held, nil
		}
	}
	size := p.rangeEnd - p.rangeStart + 1 // ranges lie inside subnets of /8 or smaller
	for i := uint32(0); i < size; i++ {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		v := p.rangeStart + (p.cursor-p.rangeStart+i)%size
		ip := u32ToIP(v)
		ok, err := s.usable(ctx, p, ip, mac, now)
		if err != nil {
			return nil, nil, err
		}
		if ok {
			p.cursor = v + 1
			if p.cursor > p.rangeEnd || p.cursor < p.rangeStart {
				p.cursor = p.rangeStart
			}
			return ip, held, nil
		}
	}
	return nil, nil, errNoAddress
}

// commit stores a lease of ip for mac until expires. When another MAC holds the address it
// takes it over if that lease has expired, or if reclaim is set (the address is mac's static
// one); otherwise it returns ErrAddressInUse (another server on the store took it since the
// pick). It writes first and looks only on a conflict: one store call in the usual case.
// p.mu of the address's pool must be held.
func (s *Server) commit(ctx context.Context, l Lease, now time.Time, reclaim bool) error {
	err := s.leases.PutLease(ctx, l)
	if err == nil {
		return nil
	}
	if !errors.Is(err, ErrAddressInUse) {
		return fmt.Errorf("put lease %v for %v: %w", l.IP, l.MAC, err)
	}
	other, found, err := s.leases.ByIP(ctx, l.IP)
	if err != nil {
		return fmt.Errorf("look up lease of %v: %w", l.IP, err)
	}
	if found && other.MAC.String() != l.MAC.String() {
		if other.Active(now) {
			if !reclaim {
				return fmt.Errorf("put lease %v for %v: %w: %v holds it", l.IP, l.MAC, ErrAddressInUse, other.MAC)
			}
			s.log.WarnContext(ctx, "static address was leased to another MAC; taking it back",
				keyIP, l.IP.String(), keyMAC, l.MAC.String(), keyOther, other.MAC.String())
		}
		if err := s.leases.DeleteLease(ctx, other.Subnet, other.MAC); err != nil {
			return fmt.Errorf("delete lease of %v: %w", other.MAC, err)
		}
	}
	if err := s.leases.PutLease(ctx, l); err != nil {
		return fmt.Errorf("put lease %v for %v: %w", l.IP, l.MAC, err)
	}
	return nil
}
