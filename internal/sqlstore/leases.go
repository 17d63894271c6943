package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ironwork/ironwork"
)

// ErrAddressInUse is returned by PutLease when another MAC holds the address, or another
// server wrote the same lease at the same moment.
var ErrAddressInUse = errors.New("address is leased to another MAC")

// DHCPLease is an address the DHCP server gave to a MAC address on a subnet until Expires. A
// MAC holds at most one lease per subnet; an address is leased to at most one MAC.
type DHCPLease struct {
	MAC      string // lower case, colon separated
	Subnet   string // the subnet in CIDR form (10.1.0.0/24); empty for leases older than 0014
	IP       string
	Hostname string
	Expires  time.Time
}

const leaseSelect = "SELECT mac, subnet, ip, hostname, expires_at FROM dhcp_leases"

func scanLease(sc interface{ Scan(...any) error }) (DHCPLease, error) {
	var l DHCPLease
	var exp int64
	err := sc.Scan(&l.MAC, &l.Subnet, &l.IP, &l.Hostname, &exp)
	l.Expires = time.UnixMicro(exp).UTC()
	return l, err
}

func (s *Store) oneLease(ctx context.Context, where string, args ...any) (DHCPLease, bool, error) {
	l, err := scanLease(s.db.QueryRowContext(ctx, s.rebind(leaseSelect+" WHERE "+where), args...))
	if errors.Is(err, sql.ErrNoRows) {
		return DHCPLease{}, false, nil
	}
	if err != nil {
		return DHCPLease{}, false, fmt.Errorf("read DHCP lease: %w", err)
	}
	return l, true, nil
}

// Lease returns the lease of a MAC address on a subnet, if it has one. A lease recorded
// before leases had subnets (an empty Subnet) is returned when the MAC has none on subnet.
func (s *Store) Lease(ctx context.Context, subnet, mac string) (DHCPLease, bool, error) {
	mac = strings.ToLower(mac)
	l, ok, err := s.oneLease(ctx, "mac = ? AND subnet = ?", mac, subnet)
	if err != nil || ok || subnet == "" {
		return l, ok, err
	}
	return s.oneLease(ctx, "mac = ? AND subnet = ''", mac)
}

// LeaseByIP returns the lease of an address, if it is leased.
func (s *Store) LeaseByIP(ctx context.Context, ip string) (DHCPLease, bool, error) {
	return s.oneLease(ctx, "ip = ?", ip)
}

// PutLease records a lease, replacing the MAC's earlier one on the same subnet (and any
// other row of the MAC holding the address). It fails with ErrAddressInUse if another MAC
// holds the address: the caller offered an address it should not have, or another server
// on the database took it first. The usual case is one statement (one round trip).
func (s *Store) PutLease(ctx context.Context, l DHCPLease) error {
	mac := strings.ToLower(l.MAC)
	defer s.lockWrites()()
	var w queryer = s.db
	if s.writer != nil { // SQLite: its writers' connection, held under the write lock
		w = s.writer
	}
	for attempt := 0; attempt < 3; attempt++ {
		// One statement, so that two servers writing the MAC's lease at once do not both
		// insert: the loser waits and updates, or fails on the address's uniqueness.
		_, err := w.ExecContext(ctx, s.rebind(`INSERT INTO dhcp_leases (mac, subnet, ip, hostname, expires_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (mac, subnet) DO UPDATE SET ip = excluded.ip, hostname = excluded.hostname,
				expires_at = excluded.expires_at, updated_at = excluded.updated_at`),
			mac, l.Subnet, l.IP, l.Hostname, l.Expires.UTC().UnixMicro(), s.nowUTC().UnixMicro())
		if err == nil {
			return nil
		}
		if _, dup := uniqueViolation(err); !dup {
			return fmt.Errorf("record DHCP lease of %s: %w", mac, err)
		}
		// The address is held: by another MAC, or by this MAC's row under another subnet
		// (a lease older than subnets), which moves here.
		var holder, holderSubnet string
		err = w.QueryRowContext(ctx, s.rebind("SELECT mac, subnet FROM dhcp_leases WHERE ip = ?"), l.IP).Scan(&holder, &holderSubnet)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			continue // freed meanwhile
		case err != nil:
			return fmt.Errorf("record DHCP lease of %s: %w", mac, err)
		case holder != mac || holderSubnet == l.Subnet:
			return fmt.Errorf("record DHCP lease of %s: %w: %s holds %s", mac, ErrAddressInUse, holder, l.IP)
		}
		if _, err := w.ExecContext(ctx, s.rebind("DELETE FROM dhcp_leases WHERE mac = ? AND subnet = ? AND ip = ?"), mac, holderSubnet, l.IP); err != nil {
			return fmt.Errorf("record DHCP lease of %s: %w", mac, err)
		}
	}
	return fmt.Errorf("record DHCP lease of %s: %w: %s", mac, ErrAddressInUse, l.IP)
}

// DeleteLease forgets the lease of a MAC address on a subnet; a MAC without one is no error.
func (s *Store) DeleteLease(ctx context.Context, subnet, mac string) error {
	if _, err := s.exec(ctx, "DELETE FROM dhcp_leases WHERE mac = ? AND subnet = ?", strings.ToLower(mac), subnet); err != nil {
		return fmt.Errorf("delete DHCP lease of %s: %w", mac, err)
	}
	return nil
}

// Leases lists every lease, in MAC then subnet order.
func (s *Store) Leases(ctx context.Context) ([]DHCPLease, error) {
	return listRows(ctx, s, "list DHCP leases", leaseSelect+" ORDER BY mac, subnet", scanLease)
}

// listRows runs a query on the readers' pool and scans every row with scan; what names the
// operation in errors.
func listRows[T any](ctx context.Context, s *Store, what, query string, scan func(interface{ Scan(...any) error }) (T, error)) ([]T, error) {
	rows, err := s.db.QueryContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// PortByAddress returns the port with a MAC address (any case).
func (s *Store) PortByAddress(ctx context.Context, mac string) (*ironwork.Port, error) {
	ports, err := s.ListPorts(ctx, PortFilter{Address: strings.ToLower(mac)}, Page{Limit: 1})
	if err != nil {
		return nil, err
	}
	if len(ports) == 0 {
		return nil, notFound("Port", mac)
	}
	return ports[0], nil
}
