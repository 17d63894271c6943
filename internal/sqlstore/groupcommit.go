package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
)

// SQLite takes one writer at a time, and a write transaction's fixed costs (BEGIN, and at
// COMMIT the WAL frames of every page touched: the table's last leaf, each index's) are most
// of a small write's cost. writeGroup commits the write transactions of concurrent callers
// together: a write joins the group waiting for the writer, the group runs in one
// transaction, each write inside a savepoint of its own, and one COMMIT makes them all
// durable. A write that fails is rolled back to its savepoint and gets its own error; the
// others are unaffected. A write that finds the writer idle runs alone, in a transaction of
// its own, as before (batcher, in batch.go).
//
// The writes of a group run one after the other in the order they joined, so each sees the
// ones before it, exactly as if they had taken the writer in turn. What a caller learns only
// changes for a failed COMMIT, which every write of the group then reports.
//
// Every statement of the group runs with one context that no caller can cancel (only the
// write timeout ends it): SQLite rolls back the whole transaction when a statement is
// interrupted, and database/sql ends the transaction when its context is done, so an
// interruption fails the group as a whole (every write reports it) and never lets one
// caller's going away undo the others' writes or leave statements running outside the
// transaction. A caller that gives up before its write is taken into a group, or before its
// turn inside one, is skipped and gets its context's error.

// maxWriteGroup bounds the writes of one transaction.
const maxWriteGroup = 64

type groupWrite struct {
	ctx context.Context // the caller's: consulted only before the write starts
	fn  func(ctx context.Context, tx *sql.Tx) error
	err error
}

// inGroupTx runs fn in a write transaction shared with the concurrent writers (see above).
func (s *Store) inGroupTx(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	w := &groupWrite{ctx: ctx, fn: fn}
	if err := s.group.do(ctx, w, func(batch []*groupWrite) {
		for start := 0; start < len(batch); start += maxWriteGroup {
			s.writeGroup(batch[start:min(start+maxWriteGroup, len(batch))])
		}
	}); err != nil {
		return err
	}
	return w.err
}

// writeGroup runs the writes of group in one transaction and sets their errors.
func (s *Store) writeGroup(group []*groupWrite) {
	if len(group) == 1 {
		w := group[0]
		w.err = s.inOwnTx(w.ctx, w.fn)
		return
	}
	defer s.lockWrites()()
	// The transaction is everybody's: no one caller's cancellation may roll it back.
	ctx, cancel := writeContext(group[0].ctx)
	defer cancel()
	fail := func(ws []*groupWrite, err error) {
		for _, w := range ws {
			if w.err == nil {
				w.err = err
			}
		}
	}
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		fail(group, fmt.Errorf("begin transaction: %w", err))
		return
	}
	defer tx.Rollback()
	for _, w := range group {
		if w.err = w.ctx.Err(); w.err != nil {
			continue
		}
		if _, err := tx.ExecContext(ctx, "SAVEPOINT gw"); err != nil {
			fail(group, fmt.Errorf("begin write: %w", err))
			return
		}
		if w.err = w.fn(ctx, tx); w.err != nil {
			if _, err := tx.ExecContext(ctx, "ROLLBACK TO gw"); err != nil {
				fail(group, fmt.Errorf("roll back a failed write in a group (%v): %w", w.err, err))
				return
			}
		}
		if _, err := tx.ExecContext(ctx, "RELEASE gw"); err != nil {
			fail(group, fmt.Errorf("end write: %w", err))
			return
		}
	}
	if err := tx.Commit(); err != nil {
		fail(group, fmt.Errorf("commit: %w", err))
	}
}
