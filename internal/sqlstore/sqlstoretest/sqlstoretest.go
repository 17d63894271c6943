// Package sqlstoretest gives tests fresh, empty databases of every kind Ironwork supports: an
// SQLite file in a temporary directory and a new database on the PostgreSQL server named by
// $IRONWORK_TEST_POSTGRES (scripts/test.sh starts one). Tests fail when PostgreSQL is not
// configured, unless $IRONWORK_SKIP_POSTGRES=1 says to skip it.
package sqlstoretest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, to create and drop test databases
)

// Target is one database to run a test against.
type Target struct {
	Name string // "sqlite" or "postgres"
	DSN  func(t *testing.T) string
}

// Targets returns the databases every conformance test runs against.
func Targets() []Target {
	return []Target{
		{Name: "sqlite", DSN: func(t *testing.T) string {
			return "sqlite://" + filepath.Join(t.TempDir(), "ironwork.db")
		}},
		{Name: "postgres", DSN: func(t *testing.T) string { return PostgresDSN(t) }},
	}
}

// PostgresDSN creates an empty database on the test PostgreSQL server, drops it when the test
// ends (or the benchmark), and returns its URL.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv("IRONWORK_TEST_POSTGRES")
	if base == "" {
		if os.Getenv("IRONWORK_SKIP_POSTGRES") == "1" {
			t.Skip("PostgreSQL tests skipped: IRONWORK_SKIP_POSTGRES=1")
		}
		t.Fatal("IRONWORK_TEST_POSTGRES is not set: run scripts/test.sh, which starts PostgreSQL, " +
			"or set it to a postgres:// URL of a server where tests may create databases " +
			"(IRONWORK_SKIP_POSTGRES=1 skips these tests)")
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("open %s: %v", base, err)
	}
	defer admin.Close()
	var b [6]byte
	rand.Read(b[:])
	name := "iwtest_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", base)
		if err != nil {
			return
		}
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", base, err)
	}
	u.Path = "/" + name
	return u.String()
}
