package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"fmt"
)

// SharedSecret returns the deployment-wide secret of that name, creating it (32 random
// bytes) when no process has yet. Every process that opens the same database gets the same
// bytes: the first writer wins and the others read what it wrote.
func (s *Store) SharedSecret(ctx context.Context, name string) ([]byte, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("make shared secret %s: %w", name, err)
	}
	var value string
	err := s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.rebind("INSERT INTO shared_secrets (name, value, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING"),
			name, base64.StdEncoding.EncodeToString(b), s.nowUTC().UnixMicro()); err != nil {
			return fmt.Errorf("store shared secret %s: %w", name, err)
		}
		if err := tx.QueryRowContext(ctx, s.rebind("SELECT value FROM shared_secrets WHERE name = ?"), name).Scan(&value); err != nil {
			return fmt.Errorf("read shared secret %s: %w", name, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out, err := base64.StdEncoding.DecodeString(value)
	if err != nil || len(out) < 16 {
		return nil, fmt.Errorf("shared secret %s in the database is not valid base64 of at least 16 bytes", name)
	}
	return out, nil
}
