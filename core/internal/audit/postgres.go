package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// On PostgreSQL the entries are rows of portico_audit (migration 3), with
// an index for the time order and one per filter; the number of entries
// is a counter in portico_counters, kept by Record and Prune in the same
// statement, so the unfiltered total needs no count over the table.

func (t *Trail) pgRecord(ctx context.Context, e *Entry, b []byte) error {
	_, err := t.pg.Pool().Exec(ctx, `WITH a AS (INSERT INTO portico_audit (id, at, actor, action, entry) VALUES ($1, $2, $3, $4, $5) RETURNING 1)
UPDATE portico_counters SET n = n + (SELECT count(*) FROM a) WHERE name = 'audit'`, e.ID, e.Time.UnixNano(), e.Actor, e.Action, b)
	return t.pg.Fail(ctx, err)
}

// pgQueries are the page and total queries of q, and their arguments.
func pgQueries(q Query) (page, total string, args []any) {
	var conds []string
	add := func(cond string, arg any) {
		args = append(args, arg)
		conds = append(conds, cond+" $"+strconv.Itoa(len(args)))
	}
	if q.Actor != "" {
		add("actor =", q.Actor)
	}
	if q.Action != "" {
		add("action =", q.Action)
	}
	if !q.Since.IsZero() {
		add("at >=", q.Since.UnixNano())
	}
	where := ""
	if len(conds) > 0 {
		where = " WHERE " + strings.Join(conds, " AND ")
	}
	n := len(args)
	page = "SELECT entry FROM portico_audit" + where + " ORDER BY at DESC, id DESC LIMIT $" + strconv.Itoa(n+1) + " OFFSET $" + strconv.Itoa(n+2)
	total = `SELECT n FROM portico_counters WHERE name = 'audit'`
	if where != "" {
		total = "SELECT count(*) FROM portico_audit" + where
	}
	return page, total, args
}

func (t *Trail) pgList(ctx context.Context, q Query) ([]Entry, int, error) {
	page, total, args := pgQueries(q)
	pool := t.pg.Pool()
	var n int
	if err := pool.QueryRow(ctx, total, args...).Scan(&n); err != nil {
		return nil, 0, t.pg.Fail(ctx, err)
	}
	rows, err := pool.Query(ctx, page, append(args, q.Limit, q.Offset)...)
	if err != nil {
		return nil, 0, t.pg.Fail(ctx, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Entry, error) {
		var b []byte
		var e Entry
		if err := r.Scan(&b); err != nil {
			return e, err
		}
		if err := json.Unmarshal(b, &e); err != nil {
			return e, fmt.Errorf("audit: decode entry: %w", err)
		}
		return e, nil
	})
	if err != nil {
		return nil, 0, t.pg.Fail(ctx, err)
	}
	return out, n, nil
}

func (t *Trail) pgPrune(ctx context.Context, before time.Time) (int, error) {
	var n int
	err := t.pg.Pool().QueryRow(ctx, `WITH d AS (DELETE FROM portico_audit WHERE at < $1 RETURNING 1),
c AS (UPDATE portico_counters SET n = n - (SELECT count(*) FROM d) WHERE name = 'audit')
SELECT count(*) FROM d`, before.UnixNano()).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("audit: prune: %w", t.pg.Fail(ctx, err))
	}
	return n, nil
}
