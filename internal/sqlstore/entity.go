package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ironwork/ironwork"
)

// idOf resolves the UUID of a row of table to its id; "" resolves to NULL. A missing row is
// an EINVALID error: the caller referred to something that does not exist.
func (s *Store) idOf(ctx context.Context, q queryer, table, kind, id string) (any, error) {
	if id == "" {
		return nil, nil
	}
	var out int64
	err := s.queryRow(ctx, q, "SELECT id FROM "+table+" WHERE uuid = ?", strings.ToLower(id)).Scan(&out)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ironwork.Errorf(ironwork.EINVALID, "%s %s could not be found.", kind, id)
	}
	if err != nil {
		return nil, fmt.Errorf("find %s %s: %w", strings.ToLower(kind), id, err)
	}
	return out, nil
}

// entity describes how one kind of record maps onto its table, so that ports, portgroups and
// chassis share one implementation of get, list, create, update and delete.
type entity[T any] struct {
	table, alias, kind string
	cols               []column[T]
	id                 func(*T) *int64
	uuid               func(*T) *string
	times              func(*T) (created *time.Time, updated **time.Time)
	joins              string         // LEFT JOINs that the extra columns read
	extra              []string       // extra selected expressions
	extraRefs          func(*T) []any // scan targets of extra
	refs               func(ctx context.Context, s *Store, q queryer, v *T) ([]string, []any, error)
	conflict           func(col string, v *T) error
	sortKeys           sortable
	byName             bool // whether a non-UUID identifier is looked up by name
}

func (e *entity[T]) selectSQL() string {
	cols := append([]string{e.alias + ".id"}, columnNames(e.cols, e.alias+".")...)
	cols = append(cols, e.extra...)
	return "SELECT " + strings.Join(cols, ", ") + " FROM " + e.table + " " + e.alias + " " + e.joins
}

func (e *entity[T]) scan(sc interface{ Scan(...any) error }) (*T, error) {
	v := new(T)
	dest := append([]any{e.id(v)}, columnRefs(e.cols, v)...)
	if e.extraRefs != nil {
		dest = append(dest, e.extraRefs(v)...)
	}
	return v, sc.Scan(dest...)
}

func (e *entity[T]) get(ctx context.Context, s *Store, q queryer, ident string, forUpdate bool) (*T, error) {
	cond, arg := e.alias+".uuid = ?", any(strings.ToLower(ident))
	if !ironwork.IsUUID(ident) {
		if !e.byName {
			return nil, notFound(e.kind, ident)
		}
		cond, arg = e.alias+".name = ?", ident
	}
	query := e.selectSQL() + " WHERE " + cond
	if forUpdate && s.dialect == Postgres {
		query += " FOR UPDATE OF " + e.alias
	}
	v, err := e.scan(q.QueryRowContext(ctx, s.rebind(query), arg))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound(e.kind, ident)
	}
	if err != nil {
		return nil, fmt.Errorf("get %s %s: %w", strings.ToLower(e.kind), ident, err)
	}
	return v, nil
}

func (e *entity[T]) list(ctx context.Context, s *Store, w where, p Page) ([]*T, error) {
	tail, err := s.pageClause(ctx, s.db, &w, e.table, e.alias, e.kind, e.sortKeys, p)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, s.rebind(e.selectSQL()+w.sql()+tail), w.args...)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", e.table, err)
	}
	defer rows.Close()
	var out []*T
	for rows.Next() {
		v, err := e.scan(rows)
		if errors.Is(err, ErrUndecodable) {
			s.log.ErrorContext(ctx, "skip undecodable row", "table", e.table, "uuid", *e.uuid(v), "error", err)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("scan %s: %w", strings.ToLower(e.kind), err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list %s: %w", e.table, err)
	}
	return out, nil
}

func (e *entity[T]) values(ctx context.Context, s *Store, q queryer, v *T) ([]string, []any, error) {
	names, args := columnNames(e.cols, ""), columnRefs(e.cols, v)
	if e.refs != nil {
		n, a, err := e.refs(ctx, s, q, v)
		if err != nil {
			return nil, nil, err
		}
		names, args = append(names, n...), append(args, a...)
	}
	return names, args, nil
}

func (e *entity[T]) mapConflict(err error, v *T) error {
	if col, ok := uniqueViolation(err); ok {
		return e.conflict(col, v)
	}
	return fmt.Errorf("write %s: %w", strings.ToLower(e.kind), err)
}

func (e *entity[T]) create(ctx context.Context, s *Store, v *T) error {
	if u := e.uuid(v); *u == "" {
		*u = uuid.NewString()
	} else {
		*u = strings.ToLower(*u)
	}
	c, u := e.times(v)
	*c, *u = s.nowUTC(), nil
	return s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		names, args, err := e.values(ctx, s, tx, v)
		if err != nil {
			return err
		}
		q := fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s) RETURNING id", e.table, strings.Join(names, ", "), placeholders(len(names)))
		if err := tx.QueryRowContext(ctx, s.rebind(q), args...).Scan(e.id(v)); err != nil {
			return e.mapConflict(err, v)
		}
		return nil
	})
}

func (e *entity[T]) update(ctx context.Context, s *Store, ident string, fn func(*T) error) (*T, error) {
	var out *T
	err := s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		v, err := e.get(ctx, s, tx, ident, true)
		if err != nil {
			return err
		}
		id := *e.id(v)
		created, _ := e.times(v)
		was := *created
		if err := fn(v); err != nil {
			return err
		}
		*e.id(v) = id
		c, u := e.times(v)
		now := s.nowUTC()
		*c, *u = was, &now
		names, args, err := e.values(ctx, s, tx, v)
		if err != nil {
			return err
		}
		q := fmt.Sprintf("UPDATE %s SET %s WHERE id = ?", e.table, assignments(names))
		if _, err := tx.ExecContext(ctx, s.rebind(q), append(args, id)...); err != nil {
			return e.mapConflict(err, v)
		}
		out = v
		return nil
	})
	return out, err
}

func (e *entity[T]) delete(ctx context.Context, s *Store, ident string, check func(context.Context, queryer, *T) error) error {
	return s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		v, err := e.get(ctx, s, tx, ident, true)
		if err != nil {
			return err
		}
		if check != nil {
			if err := check(ctx, tx, v); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, s.rebind("DELETE FROM "+e.table+" WHERE id = ?"), *e.id(v)); err != nil {
			if foreignKeyViolation(err) {
				return ironwork.Errorf(ironwork.ECONFLICT, "%s %s is still in use.", e.kind, ident)
			}
			return fmt.Errorf("delete %s %s: %w", strings.ToLower(e.kind), ident, err)
		}
		return nil
	})
}
