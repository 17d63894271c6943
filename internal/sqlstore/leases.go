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

// ErrAddressInUse is returned by PutLease when another MAC holds the address.
var ErrAddressInUse = errors.New("address is leased to another MAC")

// DHCPLease is an address the DHCP server gave to a MAC address until Expires.
type DHCPLease struct {
	MAC      string // lower case, colon separated
	IP       string
	Hostname string
	Expires  time.Time
}

const leaseSelect = "SELECT mac, ip, hostname, expires_at FROM dhcp_leases"

func scanLease(sc interface{ Scan(...any) error }) (DHCPLease, error) {
	var l DHCPLease
	var exp int64
	err := sc.Scan(&l.MAC, &l.IP, &l.Hostname, &exp)
	l.Expires = time.UnixMicro(exp).UTC()
	return l, err
}

func (s *Store) oneLease(ctx context.Context, where string, arg any) (DHCPLease, bool, error) {
	l, err := scanLease(s.db.QueryRowContext(ctx, s.rebind(leaseSelect+" WHERE "+where), arg))
	if errors.Is(err, sql.ErrNoRows) {
		return DHCPLease{}, false, nil
	}
	if err != nil {
		return DHCPLease{}, false, fmt.Errorf("read DHCP lease: %w", err)
	}
	return l, true, nil
}

// Lease returns the lease of a MAC address, if it has one.
func (s *Store) Lease(ctx context.Context, mac string) (DHCPLease, bool, error) {
	return s.oneLease(ctx, "mac = ?", strings.ToLower(mac))
}

// LeaseByIP returns the lease of an address, if it is leased.
func (s *Store) LeaseByIP(ctx context.Context, ip string) (DHCPLease, bool, error) {
	return s.oneLease(ctx, "ip = ?", ip)
}

// PutLease records a lease, replacing the MAC's earlier one. It fails if another MAC holds
// the address: the caller offered an address it should not have.
func (s *Store) PutLease(ctx context.Context, l DHCPLease) error {
	mac := strings.ToLower(l.MAC)
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var holder string
		err := tx.QueryRowContext(ctx, s.rebind("SELECT mac FROM dhcp_leases WHERE ip = ?"), l.IP).Scan(&holder)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return fmt.Errorf("record DHCP lease of %s: %w", mac, err)
		case holder != mac:
			return fmt.Errorf("record DHCP lease of %s: %w: %s holds %s", mac, ErrAddressInUse, holder, l.IP)
		}
		if _, err := tx.ExecContext(ctx, s.rebind("DELETE FROM dhcp_leases WHERE mac = ?"), mac); err != nil {
			return fmt.Errorf("record DHCP lease of %s: %w", mac, err)
		}
		if _, err := tx.ExecContext(ctx, s.rebind("INSERT INTO dhcp_leases (mac, ip, hostname, expires_at, updated_at) VALUES (?, ?, ?, ?, ?)"),
			mac, l.IP, l.Hostname, l.Expires.UTC().UnixMicro(), s.nowUTC().UnixMicro()); err != nil {
			if _, dup := uniqueViolation(err); dup {
				// Another server took the address between our read and our write.
				return fmt.Errorf("record DHCP lease of %s: %w: %s", mac, ErrAddressInUse, l.IP)
			}
			return fmt.Errorf("record DHCP lease of %s: %w", mac, err)
		}
		return nil
	})
}

// DeleteLease forgets the lease of a MAC address; a MAC without one is no error.
func (s *Store) DeleteLease(ctx context.Context, mac string) error {
	if _, err := s.exec(ctx, "DELETE FROM dhcp_leases WHERE mac = ?", strings.ToLower(mac)); err != nil {
		return fmt.Errorf("delete DHCP lease of %s: %w", mac, err)
	}
	return nil
}

// Leases lists every lease, in MAC order.
func (s *Store) Leases(ctx context.Context) ([]DHCPLease, error) {
	rows, err := s.db.QueryContext(ctx, leaseSelect+" ORDER BY mac")
	if err != nil {
		return nil, fmt.Errorf("list DHCP leases: %w", err)
	}
	defer rows.Close()
	var out []DHCPLease
	for rows.Next() {
		l, err := scanLease(rows)
		if err != nil {
			return nil, fmt.Errorf("list DHCP leases: %w", err)
		}
		out = append(out, l)
	}
	return out, rows.Err()
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
