package sqlstore

import "time"

// NodeKeysQuery is NodeKeys' query for f, rebound for s's database, and its arguments: the
// tests of sqlstore_test ask the database how it would run it.
func (s *Store) NodeKeysQuery(f NodeKeyFilter, afterID int64, limit int) (string, []any) {
	q, args := nodeKeysQuery(f, afterID, limit)
	return s.rebind(q), args
}

// SetClock makes s read the time from now.
func (s *Store) SetClock(now func() time.Time) { s.now = now }

// NodeKeysInRangeQuery is NodeKeysInRange's query, rebound for s's database, and its arguments.
func (s *Store) NodeKeysInRangeQuery(f NodeKeyFilter, group string, r KeyRange, after *RingCursor, limit int) (string, []any) {
	q, args := s.nodeKeysInRangeQuery(f, group, r, after, limit)
	return s.rebind(q), args
}
