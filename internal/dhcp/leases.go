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

// Lease binds an IPv4 address to a MAC until Expires. An expired lease is
// kept so that the MAC gets the same address back; its address may be
// given to another MAC, which deletes it.
type Lease struct {
	MAC      net.HardwareAddr
	IP       net.IP
	Expires  time.Time
	Hostname string
}

// Active reports whether l still holds its address at now.
func (l Lease) Active(now time.Time) bool { return now.Before(l.Expires) }

// Leases persists leases, one per MAC and one per IP. The lead implements
// it on SQLite/PostgreSQL; MemoryLeases is the in-memory one.
type Leases interface {
	// Lease returns the lease of mac, expired or not.
	Lease(ctx context.Context, mac net.HardwareAddr) (Lease, bool, error)
	// ByIP returns the lease holding ip, expired or not.
	ByIP(ctx context.Context, ip net.IP) (Lease, bool, error)
	// PutLease stores l as the lease of l.MAC, replacing its previous one
	// (which may have another IP). It returns ErrAddressInUse if another
	// MAC's lease has l.IP.
	PutLease(ctx context.Context, l Lease) error
	// DeleteLease removes the lease of mac; no lease is not an error.
	DeleteLease(ctx context.Context, mac net.HardwareAddr) error
	// Leases lists every lease.
	Leases(ctx context.Context) ([]Lease, error)
}

// MemoryLeases is a Leases kept in memory, for tests and for running
// without a database. Its zero value is ready to use.
type MemoryLeases struct {
	mu    sync.Mutex
	byMAC map[string]Lease
	byIP  map[uint32]string
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
func (m *MemoryLeases) Lease(_ context.Context, mac net.HardwareAddr) (Lease, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.byMAC[string(mac)]
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
	mac, ok := m.byIP[ipToU32(ip4)]
	if !ok {
		return Lease{}, false, nil
	}
	return copyLease(m.byMAC[mac]), true, nil
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
		m.byMAC = make(map[string]Lease)
		m.byIP = make(map[uint32]string)
	}
	key := ipToU32(ip4)
	if holder, ok := m.byIP[key]; ok && holder != string(l.MAC) {
		return ErrAddressInUse
	}
	if old, ok := m.byMAC[string(l.MAC)]; ok {
		delete(m.byIP, ipToU32(old.IP))
	}
	m.byMAC[string(l.MAC)] = copyLease(l)
	m.byIP[key] = string(l.MAC)
	return nil
}

// DeleteLease implements Leases.
func (m *MemoryLeases) DeleteLease(_ context.Context, mac net.HardwareAddr) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.byMAC[string(mac)]; ok {
		delete(m.byIP, ipToU32(old.IP))
		delete(m.byMAC, string(mac))
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
