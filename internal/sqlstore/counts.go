package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ironwork/ironwork"
)

// NodeCount is how many nodes share a provision state, power state, maintenance flag and fault.
type NodeCount struct {
	ProvisionState ironwork.ProvisionState `json:"provision_state"`
	PowerState     ironwork.PowerState     `json:"power_state"`
	Maintenance    bool                    `json:"maintenance"`
	Fault          string                  `json:"fault"`
	Count          int                     `json:"count"`
}

// NodeCounts returns the counts of CountNodes made at most maxAge ago, by this process or by
// another sharing the database, and when they were made (to the millisecond). The last count
// is stored (table node_counts), so the processes of a deployment count their nodes once per
// maxAge between them however often each is asked. Times are each process's clock: a stored
// count made more than maxAge ahead of this one's is not trusted (and logged: the hosts'
// clocks disagree, and every scrape counts again); with clocks apart by less than maxAge a
// count may be up to twice maxAge old. maxAge 0 counts at every call. A count that cannot be
// stored is returned all the same, and the failure logged.
func (s *Store) NodeCounts(ctx context.Context, maxAge time.Duration) ([]NodeCount, time.Time, error) {
	now := s.now().Truncate(time.Millisecond)
	if maxAge > 0 {
		var at int64
		var stored string
		err := s.queryRow(ctx, s.db, "SELECT counted_at, counts FROM node_counts WHERE id = 1").Scan(&at, &stored)
		switch {
		case err == nil:
			t := time.UnixMilli(at)
			var counts []NodeCount
			age := now.Sub(t)
			switch {
			case age <= -maxAge:
				s.log.WarnContext(ctx, "stored node counts are from a clock ahead of this host's: counting again",
					"counted_at", t, "ahead", -age)
			case age >= maxAge:
			case json.Unmarshal([]byte(stored), &counts) != nil:
				s.log.WarnContext(ctx, "stored node counts cannot be read: counting again")
			default:
				return counts, t, nil
			}
		case !errors.Is(err, sql.ErrNoRows):
			return nil, time.Time{}, fmt.Errorf("read stored node counts: %w", err)
		}
	}
	counts, err := s.CountNodes(ctx)
	if err != nil {
		return nil, time.Time{}, err
	}
	if maxAge > 0 {
		if err := s.storeNodeCounts(ctx, counts, now); err != nil {
			s.log.WarnContext(ctx, "node counts not stored for the other processes", "error", err)
		}
	}
	return counts, now, nil
}

// storeNodeCounts keeps counts made at now as the last count. Two processes that count at
// once both store, the last one's staying: counts made milliseconds apart. A count stored with
// a time far ahead (another host's clock) is replaced by the next one.
func (s *Store) storeNodeCounts(ctx context.Context, counts []NodeCount, now time.Time) error {
	b, err := json.Marshal(counts)
	if err != nil {
		return fmt.Errorf("encode node counts: %w", err)
	}
	if _, err := s.exec(ctx, `INSERT INTO node_counts (id, counted_at, counts) VALUES (1, ?, ?)
		ON CONFLICT (id) DO UPDATE SET counted_at = excluded.counted_at, counts = excluded.counts`,
		now.UnixMilli(), string(b)); err != nil {
		return fmt.Errorf("store node counts: %w", err)
	}
	return nil
}

// CountNodes counts the nodes by provision state, power state, maintenance and fault: one
// grouped query over the whole nodes table (NodeCounts shares its result between processes).
func (s *Store) CountNodes(ctx context.Context) ([]NodeCount, error) {
	var q queryer = s.db
	if s.dialect == Postgres {
		// Background work on one core: PostgreSQL would otherwise scan with parallel workers,
		// taking every core of a small database server for the same time and more CPU.
		tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
		if err != nil {
			return nil, fmt.Errorf("count nodes: %w", err)
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, "SET LOCAL max_parallel_workers_per_gather = 0"); err != nil {
			return nil, fmt.Errorf("count nodes: %w", err)
		}
		q = tx
	}
	rows, err := q.QueryContext(ctx, `SELECT provision_state, COALESCE(power_state, ''), maintenance, COALESCE(fault, ''), COUNT(*)
		FROM nodes GROUP BY provision_state, COALESCE(power_state, ''), maintenance, COALESCE(fault, '')`)
	if err != nil {
		return nil, fmt.Errorf("count nodes: %w", err)
	}
	defer rows.Close()
	var out []NodeCount
	for rows.Next() {
		var c NodeCount
		if err := rows.Scan(&c.ProvisionState, &c.PowerState, boolCol{&c.Maintenance}, &c.Fault, &c.Count); err != nil {
			return nil, fmt.Errorf("scan node count: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count nodes: %w", err)
	}
	return out, nil
}
