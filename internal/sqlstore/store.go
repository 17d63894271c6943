// Package sqlstore keeps Ironwork's records in SQLite (embedded, the default) or PostgreSQL
// (shared by several servers) behind one Store. It owns the schema and its embedded, versioned
// migrations, and turns database failures into ironwork error codes. It knows nothing of HTTP
// or of drivers, and never decides whether a change is allowed: callers do.
package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/ironwork/ironwork"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Dialect is the database family a Store talks to.
type Dialect string

// Supported dialects.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Store is Ironwork's persistent state.
type Store struct {
	db      *sql.DB
	dialect Dialect
	log     *slog.Logger
	now     func() time.Time
	// writeMu serialises this process's writers on SQLite, which allows one writer at a time:
	// waiting on a Go mutex is far cheaper than SQLite's busy handler, which sleeps and retries.
	writeMu sync.Mutex
	// writer is the connection SQLite's writers use, set aside from the pool: a writer holding
	// writeMu never waits behind a crowd of readers for a connection. nil on PostgreSQL.
	writer *sql.Conn
	// stmts caches prepared statements by query text: parsing a 60-column statement costs more
	// than running it.
	stmts  sync.Map
	nstmts atomic.Int64
	// observers are told of the nodes this process writes (changes.go).
	observers nodeObservers
	// revisions coalesces concurrent single-node revision reads (revisions.go).
	revisions batcher[*revisionRead]
	// group commits concurrent SQLite write transactions together (groupcommit.go).
	group batcher[*groupWrite]
	// creates gathers PostgreSQL node creations into multi-row inserts (createbatch.go).
	creates batcher[*createReq]
}

// maxStatements bounds the statement cache; queries past it run unprepared.
const maxStatements = 512

// prepared returns a cached prepared statement for q (already rebound), or nil when it cannot
// be prepared or the cache is full. Inside a transaction (inTx) it only looks the cache up:
// preparing takes a second connection from the pool, and transactions waiting for one while
// holding theirs would deadlock; the hot statements are prepared at Open instead.
func (s *Store) prepared(ctx context.Context, q string, inTx bool) *sql.Stmt {
	if st, ok := s.stmts.Load(q); ok {
		return st.(*sql.Stmt)
	}
	if inTx || s.nstmts.Load() >= maxStatements {
		return nil
	}
	st, err := s.db.PrepareContext(ctx, q)
	if err != nil {
		return nil
	}
	if prev, loaded := s.stmts.LoadOrStore(q, st); loaded {
		st.Close()
		return prev.(*sql.Stmt)
	}
	s.nstmts.Add(1)
	return st
}

// queryRow runs a single-row query through the statement cache, on tx when it is not nil.
func (s *Store) queryRow(ctx context.Context, q queryer, query string, args ...any) *sql.Row {
	query = s.rebind(query)
	tx, inTx := q.(*sql.Tx)
	if st := s.prepared(ctx, query, inTx); st != nil {
		if inTx {
			return tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
		}
		return st.QueryRowContext(ctx, args...)
	}
	return q.QueryRowContext(ctx, query, args...)
}

// query runs a query through the statement cache, on tx when it is not nil.
func (s *Store) query(ctx context.Context, q queryer, query string, args ...any) (*sql.Rows, error) {
	query = s.rebind(query)
	tx, inTx := q.(*sql.Tx)
	if st := s.prepared(ctx, query, inTx); st != nil {
		if inTx {
			return tx.StmtContext(ctx, st).QueryContext(ctx, args...)
		}
		return st.QueryContext(ctx, args...)
	}
	return q.QueryContext(ctx, query, args...)
}

// execIn runs a writing statement through the statement cache, on tx when it is not nil.
func (s *Store) execIn(ctx context.Context, q queryer, query string, args ...any) (sql.Result, error) {
	query = s.rebind(query)
	tx, inTx := q.(*sql.Tx)
	if st := s.prepared(ctx, query, inTx); st != nil {
		if inTx {
			return tx.StmtContext(ctx, st).ExecContext(ctx, args...)
		}
		return st.ExecContext(ctx, args...)
	}
	return q.ExecContext(ctx, query, args...)
}

// lockWrites takes the write lock on SQLite; the returned function releases it.
func (s *Store) lockWrites() func() {
	if s.dialect != SQLite {
		return func() {}
	}
	s.writeMu.Lock()
	return s.writeMu.Unlock
}

// exec runs one writing statement.
func (s *Store) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if s.writer == nil {
		return s.execIn(ctx, s.db, q, args...)
	}
	var res sql.Result
	err := s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		res, err = s.execIn(ctx, tx, q, args...)
		return err
	})
	return res, err
}

// Open connects to the database named by dsn, which is either a PostgreSQL URL
// (postgres://...) or an SQLite location (sqlite:///path/to/file.db or a plain path), and
// applies any pending migrations.
func Open(ctx context.Context, dsn string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{log: log, now: time.Now}
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			return nil, fmt.Errorf("open postgresql: %w", err)
		}
		db.SetMaxOpenConns(pgPoolSize)
		db.SetMaxIdleConns(pgPoolSize)
		s.db, s.dialect = db, Postgres
	default:
		path := strings.TrimPrefix(dsn, "sqlite://")
		if path == "" {
			return nil, errors.New("open sqlite: empty database path")
		}
		if dir := filepath.Dir(path); dir != "" {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, fmt.Errorf("create database directory: %w", err)
			}
		}
		q := url.Values{}
		for _, p := range []string{"journal_mode(WAL)", "busy_timeout(10000)", "foreign_keys(1)", "synchronous(NORMAL)", "temp_store(MEMORY)"} {
			q.Add("_pragma", p)
		}
		q.Set("_txlock", "immediate")
		db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
		if err != nil {
			return nil, fmt.Errorf("open sqlite %s: %w", path, err)
		}
		// Eight connections for readers, one set aside for the writer (below).
		db.SetMaxOpenConns(9)
		db.SetMaxIdleConns(9)
		s.db, s.dialect = db, SQLite
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := s.db.PingContext(pctx); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("connect to %s database: %w", s.dialect, err)
	}
	if err := s.migrate(ctx); err != nil {
		s.db.Close()
		return nil, err
	}
	if err := s.fillRingKeys(ctx); err != nil {
		s.db.Close()
		return nil, err
	}
	for _, q := range s.hotStatements() {
		s.prepared(ctx, s.rebind(q), false)
	}
	if s.dialect == SQLite {
		w, err := s.db.Conn(ctx)
		if err != nil {
			s.db.Close()
			return nil, fmt.Errorf("set the writer connection aside: %w", err)
		}
		s.writer = w
	}
	return s, nil
}

// Close releases the prepared statements and the database connections.
func (s *Store) Close() error {
	s.stmts.Range(func(_, v any) bool { v.(*sql.Stmt).Close(); return true })
	if s.writer != nil {
		s.writer.Close()
	}
	return s.db.Close()
}

// pgPoolSize is how many PostgreSQL connections a store opens at most, and keeps open once
// opened.
const pgPoolSize = 32

// Warm opens n connections of a PostgreSQL store's pool at once (at most the pool's size) and
// reads, through each, no node the ways the API reads nodes (a page's revisions, nodes by id,
// a node by UUID). A new PostgreSQL backend starts, and loads its catalog caches on its first
// queries; under load, a pool that grows with the first concurrent requests makes each of them
// wait for that, and an API server's first seconds answer in hundreds of milliseconds
// (docs/benchmarks.md, stop 22). Warmed at start, the connections stay open in the pool (the
// store's own prepared statements are still prepared on each at their first use). Warm holds
// every connection it opens until all are open: call it before the store is shared. SQLite
// stores have nothing to warm.
func (s *Store) Warm(ctx context.Context, n int) error {
	if s.dialect != Postgres || n <= 0 {
		return nil
	}
	list, listArgs, err := s.nodeListQueryOf(ctx, "SELECT n.id, n.revision FROM nodes n LEFT JOIN chassis c ON c.id = n.chassis_id",
		NodeFilter{}, Page{Limit: 1})
	if err != nil {
		return fmt.Errorf("warm the database connections: %w", err)
	}
	reads := []struct {
		q    string
		args []any
	}{
		{list, listArgs},
		{s.rawNodeSelect() + " WHERE n.id IN (?)", []any{int64(0)}},
		{s.nodeSelect() + " WHERE n.uuid = ?", []any{"00000000-0000-0000-0000-000000000000"}},
	}
	conns := make([]*sql.Conn, min(n, pgPoolSize))
	errs := make([]error, len(conns))
	var wg sync.WaitGroup
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := s.db.Conn(ctx) // held until all are open: each is a connection of its own
			if err != nil {
				errs[i] = err
				return
			}
			conns[i] = c
			for _, r := range reads {
				rows, err := c.QueryContext(ctx, s.rebind(r.q), r.args...)
				if err != nil {
					errs[i] = err
					return
				}
				for rows.Next() {
				}
				rows.Close()
				if err := rows.Err(); err != nil {
					errs[i] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, c := range conns {
		if c != nil {
			c.Close() // back to the pool, open
		}
	}
	failed := 0
	var first error
	for _, err := range errs {
		if err != nil {
			failed++
			first = cmp.Or(first, err)
		}
	}
	if first != nil {
		return fmt.Errorf("warm the database connections: %d of %d failed, the first: %w", failed, len(conns), first)
	}
	return nil
}

// Dialect reports which database family the store uses.
func (s *Store) Dialect() Dialect { return s.dialect }

// DB exposes the connection pool, for tests and diagnostics only.
func (s *Store) DB() *sql.DB { return s.db }

// rebind turns '?' placeholders into the dialect's form.
func (s *Store) rebind(q string) string {
	if s.dialect != Postgres {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

// nowUTC returns the current time truncated to the stored precision.
func (s *Store) nowUTC() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

type migration struct {
	version int
	name    string
	sql     string
}

func (s *Store) migrations() ([]migration, error) {
	entries, err := migrationFiles.ReadDir("migrations")
	if err != nil {
		return nil, fmt.Errorf("read embedded migrations: %w", err)
	}
	var out []migration
	for _, e := range entries {
		// A migration the dialects write differently (triggers) comes as a pair,
		// NNNN_name.sqlite.sql and NNNN_name.postgres.sql, of which each store takes its own.
		if d, ok := migrationDialect(e.Name()); ok && d != s.dialect {
			continue
		}
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: name must start with a number and '_'", e.Name())
		}
		b, err := migrationFiles.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		out = append(out, migration{version: v, name: e.Name(), sql: s.translateDDL(string(b))})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	if err := distinctVersions(out); err != nil {
		return nil, err
	}
	return out, nil
}

// distinctVersions refuses two migrations of one version (sorted by version): on a fresh
// database the second would fail to record itself, and on one already at that version it
// would never run.
func distinctVersions(ms []migration) error {
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return fmt.Errorf("migrations %s and %s share version %d", ms[i-1].name, ms[i].name, ms[i].version)
		}
	}
	return nil
}

func (s *Store) translateDDL(q string) string {
	r := map[Dialect]*strings.Replacer{
		SQLite:   strings.NewReplacer("@ID@", "INTEGER PRIMARY KEY AUTOINCREMENT", "@BOOL@", "BOOLEAN", "@TEXT@", "TEXT"),
		Postgres: strings.NewReplacer("@ID@", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", "@BOOL@", "BOOLEAN", "@TEXT@", "TEXT"),
	}[s.dialect]
	return r.Replace(q)
}

// migrationDialect returns the dialect a migration file is written for, when its name says
// (NNNN_name.sqlite.sql, NNNN_name.postgres.sql).
func migrationDialect(name string) (Dialect, bool) {
	for _, d := range []Dialect{SQLite, Postgres} {
		if strings.HasSuffix(name, "."+string(d)+".sql") {
			return d, true
		}
	}
	return "", false
}

// SchemaVersion returns the newest migration applied to the database.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v sql.NullInt64
	err := s.db.QueryRowContext(ctx, "SELECT MAX(version) FROM schema_migrations").Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return int(v.Int64), nil
}

// ErrSchemaTooNew is returned by Open when the database was migrated by a newer binary.
var ErrSchemaTooNew = errors.New("database schema is newer than this binary")

func (s *Store) migrate(ctx context.Context) error {
	ms, err := s.migrations()
	if err != nil {
		return err
	}
	known := ms[len(ms)-1].version
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin migration: %w", err)
	}
	defer tx.Rollback()
	if s.dialect == Postgres {
		// Serialise concurrent starts of several servers on one database.
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(7100385)"); err != nil {
			return fmt.Errorf("lock schema for migration: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name VARCHAR(255) NOT NULL, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	var cur sql.NullInt64
	if err := tx.QueryRowContext(ctx, "SELECT MAX(version) FROM schema_migrations").Scan(&cur); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if int(cur.Int64) > known {
		return fmt.Errorf("%w: the database is at schema version %d but this ironwork knows versions up to %d; "+
			"run a newer ironwork, or restore a backup taken before the upgrade", ErrSchemaTooNew, cur.Int64, known)
	}
	// Migration numbers are handed out to work done in parallel, so a lower number may land
	// after a higher one was applied: apply every migration the database has not recorded.
	done := make(map[int]bool)
	rows, err := tx.QueryContext(ctx, "SELECT version FROM schema_migrations")
	if err != nil {
		return fmt.Errorf("read applied migrations: %w", err)
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return fmt.Errorf("read applied migrations: %w", err)
		}
		done[v] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read applied migrations: %w", err)
	}
	applied := 0
	for _, m := range ms {
		if done[m.version] {
			continue
		}
		for _, stmt := range splitSQL(m.sql) {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("apply migration %s: %w", m.name, err)
			}
		}
		if _, err := tx.ExecContext(ctx, s.rebind("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)"),
			m.version, m.name, s.nowUTC().UnixMicro()); err != nil {
			return fmt.Errorf("record migration %s: %w", m.name, err)
		}
		applied++
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit migrations: %w", err)
	}
	if applied > 0 {
		s.log.Info("database migrated", "dialect", s.dialect, "from", cur.Int64, "to", known)
	}
	return nil
}

// splitSQL splits a migration into statements at semicolons that end a line, dropping comments.
func splitSQL(q string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(q, "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(t, ";") {
			out = append(out, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			cur.Reset()
		}
	}
	if strings.TrimSpace(cur.String()) != "" {
		out = append(out, cur.String())
	}
	return out
}

// uniqueViolation reports whether err is a unique-constraint violation and, where the database
// says, the violated column.
func uniqueViolation(err error) (column string, ok bool) {
	var pg *pgconn.PgError
	if errors.As(err, &pg) && pg.Code == "23505" {
		// Constraint names are <table>_<column>_key for the UNIQUE columns of our schema.
		c := strings.TrimSuffix(pg.ConstraintName, "_key")
		if i := strings.Index(c, "_"); i >= 0 {
			c = c[i+1:]
		}
		return c, true
	}
	var se *sqlite.Error
	if errors.As(err, &se) && (se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY) {
		// The message is "UNIQUE constraint failed: table.column".
		msg := se.Error()
		if i := strings.LastIndex(msg, "."); i >= 0 {
			c := msg[i+1:]
			if j := strings.IndexAny(c, " ,)"); j >= 0 {
				c = c[:j]
			}
			return c, true
		}
		return "", true
	}
	return "", false
}

// foreignKeyViolation reports whether err is a foreign-key violation.
func foreignKeyViolation(err error) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) && pg.Code == "23503" {
		return true
	}
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}

// writeTimeout bounds one write transaction (or one group of them, on SQLite).
const writeTimeout = 2 * time.Minute

// inTx runs fn in a transaction and commits it when fn returns nil. fn's statements must use
// the context it is given, not its caller's: a write once started is carried through even if
// its caller gives up (an API client that goes away), because on SQLite a cancelled context
// interrupts the connection and the interruption rolls back the transaction, leaving the
// statements after it to run outside any transaction, and because concurrent writes share one
// transaction there (groupcommit.go). A caller that gave up before its write started gets its
// context's error and nothing is written.
func (s *Store) inTx(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	if s.writer != nil {
		return s.inGroupTx(ctx, fn)
	}
	return s.inOwnTx(ctx, fn)
}

// inOwnTx runs fn in a transaction of its own, as inTx describes.
func (s *Store) inOwnTx(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	defer s.lockWrites()()
	if err := ctx.Err(); err != nil {
		return err
	}
	ctx, cancel := writeContext(ctx)
	defer cancel()
	var (
		tx  *sql.Tx
		err error
	)
	if s.writer != nil {
		tx, err = s.writer.BeginTx(ctx, nil)
	} else {
		tx, err = s.db.BeginTx(ctx, nil)
	}
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer tx.Rollback()
	if err := fn(ctx, tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// inStatement runs fn, a write of one statement outside any transaction (PostgreSQL only:
// SQLite's writes go through inTx), with the context inTx gives its callbacks.
func (s *Store) inStatement(ctx context.Context, fn func(ctx context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ctx, cancel := writeContext(ctx)
	defer cancel()
	return fn(ctx)
}

// writeContext returns the context a write's statements run with: ctx's values, not its
// cancellation, and the write timeout.
func writeContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
}

func notFound(kind, ident string) error {
	return ironwork.Errorf(ironwork.ENOTFOUND, "%s %s could not be found.", kind, ident)
}
