package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// DHCP6Lease is an IPv6 address the DHCPv6 server gave to one identity association of a
// client (Client: hex DUID "/" hex IAID) until Expires.
type DHCP6Lease struct {
	Client  string
	MAC     string // lower case, colon separated; "" when unknown
	IP      string
	Expires time.Time
}

const lease6Select = "SELECT client, mac, ip, expires_at FROM dhcp6_leases"

func scanLease6(sc interface{ Scan(...any) error }) (DHCP6Lease, error) {
	var l DHCP6Lease
	var exp int64
	err := sc.Scan(&l.Client, &l.MAC, &l.IP, &exp)
	l.Expires = time.UnixMicro(exp).UTC()
	return l, err
}

func (s *Store) oneLease6(ctx context.Context, where string, arg any) (DHCP6Lease, bool, error) {
	l, err := scanLease6(s.db.QueryRowContext(ctx, s.rebind(lease6Select+" WHERE "+where), arg))
	if errors.Is(err, sql.ErrNoRows) {
		return DHCP6Lease{}, false, nil
	}
	if err != nil {
		return DHCP6Lease{}, false, fmt.Errorf("read DHCPv6 lease: %w", err)
	}
	return l, true, nil
}

// Lease6 returns the lease of a client IA, if it has one.
func (s *Store) Lease6(ctx context.Context, client string) (DHCP6Lease, bool, error) {
	return s.oneLease6(ctx, "client = ?", client)
}

// Lease6ByIP returns the lease of an IPv6 address (in its canonical form), if leased.
func (s *Store) Lease6ByIP(ctx context.Context, ip string) (DHCP6Lease, bool, error) {
	return s.oneLease6(ctx, "ip = ?", ip)
}

// PutLease6 records a lease, replacing the client's earlier one; ErrAddressInUse if another
// client holds the address.
func (s *Store) PutLease6(ctx context.Context, l DHCP6Lease) error {
	mac := strings.ToLower(l.MAC)
	return s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var holder string
		err := tx.QueryRowContext(ctx, s.rebind("SELECT client FROM dhcp6_leases WHERE ip = ?"), l.IP).Scan(&holder)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return fmt.Errorf("record DHCPv6 lease of %s: %w", l.Client, err)
		case holder != l.Client:
			return fmt.Errorf("record DHCPv6 lease of %s: %w: %s holds %s", l.Client, ErrAddressInUse, holder, l.IP)
		}
		if _, err := tx.ExecContext(ctx, s.rebind("DELETE FROM dhcp6_leases WHERE client = ?"), l.Client); err != nil {
			return fmt.Errorf("record DHCPv6 lease of %s: %w", l.Client, err)
		}
		if _, err := tx.ExecContext(ctx, s.rebind("INSERT INTO dhcp6_leases (client, mac, ip, expires_at, updated_at) VALUES (?, ?, ?, ?, ?)"),
			l.Client, mac, l.IP, l.Expires.UTC().UnixMicro(), s.nowUTC().UnixMicro()); err != nil {
			if _, dup := uniqueViolation(err); dup {
				return fmt.Errorf("record DHCPv6 lease of %s: %w: %s", l.Client, ErrAddressInUse, l.IP)
			}
			return fmt.Errorf("record DHCPv6 lease of %s: %w", l.Client, err)
		}
		return nil
	})
}

// DeleteLease6 forgets the lease of a client IA; none is no error.
func (s *Store) DeleteLease6(ctx context.Context, client string) error {
	if _, err := s.exec(ctx, "DELETE FROM dhcp6_leases WHERE client = ?", client); err != nil {
		return fmt.Errorf("delete DHCPv6 lease of %s: %w", client, err)
	}
	return nil
}

// Leases6 lists every DHCPv6 lease, in client order.
func (s *Store) Leases6(ctx context.Context) ([]DHCP6Lease, error) {
	return listRows(ctx, s, "list DHCPv6 leases", lease6Select+" ORDER BY client", scanLease6)
}
