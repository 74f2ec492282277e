package audit

import (
	"context"
	"testing"
	"time"

	"github.com/porticohq/portico/core/internal/store"
	"github.com/porticohq/portico/core/internal/store/storetest"
)

// TestListUsesIndexes: on PostgreSQL, List's page and total queries over
// 100,000 entries (300 actors, 30 actions) read through an index for
// every filter. (Counting a filter that matches a third of the table or
// more, the planner rightly prefers reading the table.) It runs in the
// postgres pass of the suite.
func TestListUsesIndexes(t *testing.T) {
	if storetest.Name() != "postgres" {
		return // the badger pass has no query plans
	}
	pg := storetest.Open(t).(*store.Postgres)
	ctx := context.Background()
	_, err := pg.Pool().Exec(ctx, `INSERT INTO portico_audit (id, at, actor, action, entry)
SELECT lpad(to_hex(i), 32, '0'), i * 1000000000::bigint, 'key_' || (i % 300), 'action.' || (i % 30), '{}'::bytea
FROM generate_series(1, 100000) AS i`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pg.Pool().Exec(ctx, `VACUUM ANALYZE portico_audit`); err != nil {
		t.Fatal(err)
	}
	for _, q := range []Query{
		{},
		{Actor: "key_7"},
		{Action: "action.7"},
		{Actor: "key_7", Action: "action.7"},
		{Since: time.Unix(99_000, 0)},
		{Offset: 99_000},
	} {
		q.Limit = 50
		page, total, args := pgQueries(q)
		storetest.UsesIndex(t, pg, "portico_audit", page, append(append([]any{}, args...), q.Limit, q.Offset)...)
		if len(args) > 0 {
			storetest.UsesIndex(t, pg, "portico_audit", total, args...)
		}
	}
}
