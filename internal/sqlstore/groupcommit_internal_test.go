package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ironwork/ironwork/internal/sqlstore/sqlstoretest"
)

// TestGroupCommitRollsBackFailedWrites runs writes that each insert a row and then fail, beside
// writes that succeed, many at a time on SQLite, so that they share transactions: a failed
// write's row must be gone (rolled back to its savepoint, though its statement succeeded) and
// the others' rows kept, each caller getting its own result.
func TestGroupCommitRollsBackFailedWrites(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "group.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.db.ExecContext(ctx, "CREATE TABLE gc_rows (k TEXT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	errOwn := errors.New("this write fails after its insert")
	const writers = 200
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
				if _, err := tx.ExecContext(ctx, "INSERT INTO gc_rows (k) VALUES (?)", fmt.Sprint(i)); err != nil {
					return err
				}
				if i%4 == 0 {
					return fmt.Errorf("writer %d: %w", i, errOwn)
				}
				return nil
			})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		var n int
		if qerr := s.db.QueryRowContext(ctx, "SELECT count(*) FROM gc_rows WHERE k = ?", fmt.Sprint(i)).Scan(&n); qerr != nil {
			t.Fatal(qerr)
		}
		if i%4 == 0 {
			if !errors.Is(err, errOwn) || err.Error() != fmt.Sprintf("writer %d: %v", i, errOwn) {
				t.Errorf("writer %d: got %v, want its own failure", i, err)
			}
			if n != 0 {
				t.Errorf("writer %d failed but its row is stored", i)
			}
			continue
		}
		if err != nil || n != 1 {
			t.Errorf("writer %d: %v, %d rows stored", i, err, n)
		}
	}
}

// TestWriteOutlivesItsCaller has many writers, at once, cancel their own caller's context in
// the middle of their write, between two inserts: each write must be carried through whole
// (both rows, no error), and no other write of its group may suffer from it. On SQLite a
// statement run with the cancelled context would be interrupted, rolling back the shared
// transaction.
func TestWriteOutlivesItsCaller(t *testing.T) {
	for _, target := range sqlstoretest.Targets() {
		t.Run(target.Name, func(t *testing.T) {
			ctx := context.Background()
			s, err := Open(ctx, target.DSN(t), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if _, err := s.db.ExecContext(ctx, "CREATE TABLE gc_outlive (k TEXT PRIMARY KEY)"); err != nil {
				t.Fatal(err)
			}
			const writers = 120
			errs := make([]error, writers)
			var wg sync.WaitGroup
			for i := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					cctx, cancel := context.WithCancel(ctx)
					defer cancel()
					errs[i] = s.inTx(cctx, func(ctx context.Context, tx *sql.Tx) error {
						if _, err := tx.ExecContext(ctx, s.rebind("INSERT INTO gc_outlive (k) VALUES (?)"), fmt.Sprint(i, "a")); err != nil {
							return err
						}
						if i%2 == 0 {
							cancel() // the caller goes away mid-write
						}
						_, err := tx.ExecContext(ctx, s.rebind("INSERT INTO gc_outlive (k) VALUES (?)"), fmt.Sprint(i, "b"))
						return err
					})
				}()
			}
			wg.Wait()
			for i, err := range errs {
				var n int
				if qerr := s.db.QueryRowContext(ctx, s.rebind("SELECT count(*) FROM gc_outlive WHERE k IN (?, ?)"),
					fmt.Sprint(i, "a"), fmt.Sprint(i, "b")).Scan(&n); qerr != nil {
					t.Fatal(qerr)
				}
				if err != nil || n != 2 {
					t.Errorf("writer %d (cancelled mid-write: %v): %v, %d of 2 rows stored", i, i%2 == 0, err, n)
				}
			}
		})
	}
}
