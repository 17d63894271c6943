package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/ironwork/ironwork"
)

// Page selects one page of a list: up to Limit rows after the row whose UUID is Marker, in
// order of SortKey (a column name; ties broken by id) and SortDir ("asc" or "desc").
type Page struct {
	Limit   int
	Marker  string
	SortKey string
	SortDir string

	// markerInQuery: when the page is in id order, the marker's id is read by a subquery of
	// the page's own query rather than by a query of its own, which saves a round trip; a
	// marker that does not exist then gives an empty page, and the caller, on an empty page,
	// must check the marker (markerExists) to answer "not found".
	markerInQuery bool
}

// where collects the conditions and arguments of a query.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

func (w *where) sql() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// sortable maps a sort key to the SQL expression it orders by; the expression must never be
// NULL so that markers compare cleanly.
type sortable map[string]string

// pageClause adds the marker condition to w and returns the ORDER BY and LIMIT clauses. alias
// is the table alias used in the query ("" for none); kind names the object for errors.
func (s *Store) pageClause(ctx context.Context, q queryer, w *where, table, alias, kind string, keys sortable, p Page) (string, error) {
	prefix := ""
	if alias != "" {
		prefix = alias + "."
	}
	key := p.SortKey
	if key == "" {
		key = "id"
	}
	expr, ok := keys[key]
	if !ok {
		return "", ironwork.Errorf(ironwork.EINVALID, "The sort_key value %q is an invalid field for sorting", key)
	}
	expr = strings.ReplaceAll(expr, "@.", prefix)
	dir := strings.ToLower(p.SortDir)
	switch dir {
	case "":
		dir = "asc"
	case "asc", "desc":
	default:
		return "", ironwork.Errorf(ironwork.EINVALID, "Invalid sort direction: %s. Acceptable values are 'asc' or 'desc'", p.SortDir)
	}
	if p.Marker != "" && p.markerInQuery && expr == prefix+"id" {
		op := ">"
		if dir == "desc" {
			op = "<"
		}
		w.add(fmt.Sprintf("%sid %s (SELECT id FROM %s WHERE uuid = ?)", prefix, op, table), p.Marker)
	} else if p.Marker != "" {
		var mv any
		var mid int64
		err := q.QueryRowContext(ctx, s.rebind(fmt.Sprintf("SELECT %s, id FROM %s WHERE uuid = ?",
			strings.ReplaceAll(keys[key], "@.", ""), table)), p.Marker).Scan(&mv, &mid)
		if err == sql.ErrNoRows {
			return "", notFound(kind, p.Marker)
		}
		if err != nil {
			return "", fmt.Errorf("read marker: %w", err)
		}
		op := ">"
		if dir == "desc" {
			op = "<"
		}
		if expr == prefix+"id" {
			// The ids are unique: the rows after the marker's id, a range of the primary key.
			w.add(fmt.Sprintf("%sid %s ?", prefix, op), mid)
		} else {
			// The first term bounds the sort key on its own, so that the database can start
			// from the marker in an index of it rather than filter every row before it.
			w.add(fmt.Sprintf("(%s %s= ? AND (%s %s ? OR (%s = ? AND %sid %s ?)))", expr, op, expr, op, expr, prefix, op),
				mv, mv, mv, mid)
		}
	}
	clause := fmt.Sprintf(" ORDER BY %s %s, %sid %s", expr, dir, prefix, dir)
	if p.Limit > 0 {
		clause += fmt.Sprintf(" LIMIT %d", p.Limit)
	}
	return clause, nil
}

// markerExists reports whether table holds a row whose UUID is marker (see Page.markerInQuery).
func (s *Store) markerExists(ctx context.Context, table, kind, marker string) error {
	var id int64
	err := s.queryRow(ctx, s.db, fmt.Sprintf("SELECT id FROM %s WHERE uuid = ?", table), marker).Scan(&id)
	if err == sql.ErrNoRows {
		return notFound(kind, marker)
	}
	if err != nil {
		return fmt.Errorf("read marker: %w", err)
	}
	return nil
}

// queryer is what both *sql.DB and *sql.Tx offer.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// maxInList bounds the values of one "IN (...)" list: SQLite and PostgreSQL take far more
// parameters, this keeps each statement small.
const maxInList = 500

// placeholders is n comma-separated "?".
func placeholders(n int) string {
	if n == 0 {
		return ""
	}
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

func assignments(names []string) string {
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + " = ?"
	}
	return strings.Join(parts, ", ")
}
