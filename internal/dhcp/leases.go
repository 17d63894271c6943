package dhcp

import (
	"cmp"
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"time"
)

// ErrAddressInUse is returned by Leases.PutLease when the lease's IP is held
// by another MAC's lease. The server deletes the other lease first when it
// means to reuse its address.
var ErrAddressInUse = errors.New("address is leased to another MAC")

// Lease binds an IPv4 address of a subnet to a MAC until Expires. An expired
// lease is kept so that the MAC gets the same address back; its address may
// be given to another MAC, which deletes it.
type Lease struct {
	MAC net.HardwareAddr
	// Subnet is the pool the address belongs to, in CIDR form (10.1.0.0/24):
	// a MAC holds one lease per subnet, so a machine moving between racks
	// keeps its address on each.
	Subnet   string
	IP       net.IP
	Expires  time.Time
	Hostname string
}

// Active reports whether l still holds its address at now.
func (l Lease) Active(now time.Time) bool { return now.Before(l.Expires) }

// Leases persists leases, one per MAC and subnet and one per IP. The server
// package keeps them in SQLite/PostgreSQL; MemoryLeases is the in-memory one.
// Several servers may share one store: it, not the servers, guarantees that
// an address is leased to one MAC.
type Leases interface {
	// Lease returns the lease of mac on subnet, expired or not.
	Lease(ctx context.Context, subnet string, mac net.HardwareAddr) (Lease, bool, error)
	// ByIP returns the lease holding ip, expired or not.
	ByIP(ctx context.Context, ip net.IP) (Lease, bool, error)
	// PutLease stores l as the lease of l.MAC on l.Subnet, replacing its
	// previous one there (which may have another IP). It returns
	// ErrAddressInUse if another MAC's lease has l.IP.
	PutLease(ctx context.Context, l Lease) error
	// DeleteLease removes the lease of mac on subnet; no lease is not an error.
	DeleteLease(ctx context.Context, subnet string, mac net.HardwareAddr) error
	// Leases lists every lease.
	Leases(ctx context.Context) ([]Lease, error)
}

// MemoryLeases is a Leases kept in memory, for tests and for running
// without a database. Its zero value is ready to use.
type MemoryLeases struct {
	mu    sync.Mutex
	byMAC map[leaseKey]Lease
	byIP  map[uint32]leaseKey
}

// leaseKey names the lease of a MAC on a subnet.
type leaseKey struct{ subnet, mac string }

func keyOf(subnet string, mac net.HardwareAddr) leaseKey {
	return leaseKey{subnet: subnet, mac: string(mac)}
}

var _ Leases = (*MemoryLeases)(nil)

// NewMemoryLeases returns an empty MemoryLeases.
func NewMemoryLeases() *MemoryLeases { return &MemoryLeases{} }

func copyLease(l Lease) Lease {
	l.MAC = slices.Clone(l.MAC)
	l.IP = slices.Clone(l.IP.To4())
	return l
}

// Lease implements Leases.
func (m *MemoryLeases) Lease(_ context.Context, subnet string, mac net.HardwareAddr) (Lease, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.byMAC[keyOf(subnet, mac)]
	return copyLease(l), ok, nil
}

// ByIP implements Leases.
func (m *MemoryLeases) ByIP(_ context.Context, ip net.IP) (Lease, bool, error) {
	ip4 := ip.To4()
	if ip4 == nil {
		return Lease{}, false, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.byIP[ipToU32(ip4)]
	if !ok {
		return Lease{}, false, nil
	}
	return copyLease(m.byMAC[k]), true, nil
}

// PutLease implements Leases.
func (m *MemoryLeases) PutLease(_ context.Context, l Lease) error {
	ip4 := l.IP.To4()
	if ip4 == nil || len(l.MAC) == 0 {
		return errors.New("put lease: want a MAC and an IPv4 address")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.byMAC == nil {
		m.byMAC = make(map[leaseKey]Lease)
		m.byIP = make(map[uint32]leaseKey)
	}
	k, ipKey := keyOf(l.Subnet, l.MAC), ipToU32(ip4)
	if holder, ok := m.byIP[ipKey]; ok {
		if holder.mac != k.mac {
			return ErrAddressInUse
		}
		delete(m.byMAC, holder) // the MAC's row for this address under another subnet
	}
	if old, ok := m.byMAC[k]; ok {
		delete(m.byIP, ipToU32(old.IP))
	}
	m.byMAC[k] = copyLease(l)
	m.byIP[ipKey] = k
	return nil
}

// DeleteLease implements Leases.
func (m *MemoryLeases) DeleteLease(_ context.Context, subnet string, mac net.HardwareAddr) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := keyOf(subnet, mac)
	if old, ok := m.byMAC[k]; ok {
		delete(m.byIP, ipToU32(old.IP))
		delete(m.byMAC, k)
	}
	return nil
}

// Leases implements Leases; the result is sorted by IP.
func (m *MemoryLeases) Leases(_ context.Context) ([]Lease, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Lease, 0, len(m.byMAC))
	for _, l := range m.byMAC {
		out = append(out, copyLease(l))
	}
	slices.SortFunc(out, func(a, b Lease) int { return cmp.Compare(ipToU32(a.IP), ipToU32(b.IP)) })
	return out, nil
}
