package sqlstore

import (
	"strings"
	"testing"
)

// TestMigrationVersionsAreDistinct: the embedded migrations of each dialect have one file per
// version, and two files of one version are refused by name.
func TestMigrationVersionsAreDistinct(t *testing.T) {
	for _, d := range []Dialect{SQLite, Postgres} {
		ms, err := (&Store{dialect: d}).migrations()
		if err != nil || len(ms) < 18 {
			t.Fatalf("%s: %d migrations, %v", d, len(ms), err)
		}
	}
	err := distinctVersions([]migration{{version: 20, name: "0020_a.sql"}, {version: 21, name: "0021_b.sql"}, {version: 21, name: "0021_c.sql"}})
	if err == nil || !strings.Contains(err.Error(), "0021_b.sql and 0021_c.sql share version 21") {
		t.Fatalf("duplicate versions: %v", err)
	}
}
