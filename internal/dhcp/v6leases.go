package dhcp

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Lease6 binds an IPv6 address to one identity association of a DHCPv6
// client (its DUID and IAID, together Client) until Expires. MAC is the
// client's link-layer address when the server learnt it (for logs and the
// port it belongs to). Expired leases are kept, as for DHCPv4.
type Lease6 struct {
	Client  string // hex DUID "/" hex IAID
	MAC     net.HardwareAddr
	IP      netip.Addr
	Expires time.Time
}

// Active reports whether l still holds its address at now.
func (l Lease6) Active(now time.Time) bool { return now.Before(l.Expires) }

// Leases6 persists DHCPv6 leases, one per client IA and one per address.
type Leases6 interface {
	Lease6(ctx context.Context, client string) (Lease6, bool, error)
	ByIP6(ctx context.Context, ip netip.Addr) (Lease6, bool, error)
	// PutLease6 stores l as the lease of l.Client, replacing its previous
	// one; ErrAddressInUse if another client's lease has l.IP.
	PutLease6(ctx context.Context, l Lease6) error
	DeleteLease6(ctx context.Context, client string) error
	Leases6(ctx context.Context) ([]Lease6, error)
}

// MemoryLeases6 is a Leases6 in memory; its zero value is ready to use.
type MemoryLeases6 struct {
	mu       sync.Mutex
	byClient map[string]Lease6
	byIP     map[netip.Addr]string
}

var _ Leases6 = (*MemoryLeases6)(nil)

func copyLease6(l Lease6) Lease6 {
	l.MAC = slices.Clone(l.MAC)
	return l
}

// Lease6 implements Leases6.
func (m *MemoryLeases6) Lease6(_ context.Context, client string) (Lease6, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.byClient[client]
	return copyLease6(l), ok, nil
}

// ByIP6 implements Leases6.
func (m *MemoryLeases6) ByIP6(_ context.Context, ip netip.Addr) (Lease6, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.byIP[ip]
	if !ok {
		return Lease6{}, false, nil
	}
	return copyLease6(m.byClient[c]), true, nil
}

// PutLease6 implements Leases6.
func (m *MemoryLeases6) PutLease6(_ context.Context, l Lease6) error {
	if l.Client == "" || !l.IP.Is6() {
		return errors.New("put lease: want a client and an IPv6 address")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.byClient == nil {
		m.byClient = make(map[string]Lease6)
		m.byIP = make(map[netip.Addr]string)
	}
	if holder, ok := m.byIP[l.IP]; ok && holder != l.Client {
		return ErrAddressInUse
	}
	if old, ok := m.byClient[l.Client]; ok {
		delete(m.byIP, old.IP)
	}
	m.byClient[l.Client] = copyLease6(l)
	m.byIP[l.IP] = l.Client
	return nil
}

// DeleteLease6 implements Leases6.
func (m *MemoryLeases6) DeleteLease6(_ context.Context, client string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.byClient[client]; ok {
		delete(m.byIP, old.IP)
		delete(m.byClient, client)
	}
	return nil
}

// Leases6 implements Leases6; the result is sorted by address.
func (m *MemoryLeases6) Leases6(_ context.Context) ([]Lease6, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Lease6, 0, len(m.byClient))
	for _, l := range m.byClient {
		out = append(out, copyLease6(l))
	}
	slices.SortFunc(out, func(a, b Lease6) int { return a.IP.Compare(b.IP) })
	return out, nil
}
