package session

import (
	"context"
	"testing"
	"time"

	"github.com/porticohq/portico/core/internal/store/storetest"
)

// TestListUsesIndexes: on PostgreSQL, every list query (the page and its
// exact total) over 100,000 sessions reads through an index, never a
// scan of the table (the total of every session is a counter).
func TestListUsesIndexes(t *testing.T) {
	fx := newPostgresFixture(t)
	ctx := context.Background()
	pool := fx.pg.Pool()
	// 100,000 sessions of 1,000 owners on 4 channels, one in ten
	// terminated, made in one statement.
	_, err := pool.Exec(ctx, `INSERT INTO portico_sessions (id, owner, channel, user_id, created_at, last_activity, terminated, record)
SELECT 'ses_' || i, 'usr_' || (i % 1000), (ARRAY['api','websocket','telegram','slack'])[1 + i % 4], 'end_' || (i % 5000),
	now() - i * interval '1 second', now() - i * interval '1 second', i % 10 = 0, '{}'::bytea
FROM generate_series(1, 100000) AS i`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `VACUUM ANALYZE portico_sessions`); err != nil {
		t.Fatal(err)
	}
	idle := time.Now().Add(-time.Hour)
	filters := []struct {
		name string
		f    Filter
	}{
		{"own", Filter{Owner: "usr_7"}},
		{"everyone's", Filter{AnyOwner: true}},
		{"own on a channel", Filter{Owner: "usr_7", Channel: "telegram"}},
		{"own of an end user", Filter{Owner: "usr_7", UserID: "end_7"}},
		{"own active", Filter{Owner: "usr_7", Status: Active}},
		{"own idle", Filter{Owner: "usr_7", Status: Idle}},
		{"own terminated", Filter{Owner: "usr_7", Status: Terminated}},
		{"a channel", Filter{AnyOwner: true, Channel: "slack"}},
		{"an end user", Filter{AnyOwner: true, UserID: "end_42"}},
		{"active", Filter{AnyOwner: true, Status: Active}},
		{"terminated", Filter{AnyOwner: true, Status: Terminated}},
		{"deep page", Filter{AnyOwner: true, Offset: 99_000}},
	}
	for _, tt := range filters {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.f
			f.Limit = 50
			page, total, args := listQueries(f, idle)
			for what, q := range map[string]struct {
				sql  string
				args []any
			}{"page": {page, append(append([]any{}, args...), f.Limit, f.Offset)}, "total": {total, args}} {
				if q.sql != sqlCount {
					t.Logf("the %s query", what)
					storetest.UsesIndex(t, fx.pg, "portico_sessions", q.sql, q.args...)
				}
			}
		})
	}
}
