package llm

import (
	"context"
	"time"
)

// On PostgreSQL the ledger's rows are portico_usage's (migration 4): one
// per UTC day, account and model, added to by one upsert, so concurrent
// completions on several nodes never retry or lose a count.

func (l *ledger) pgRecord(ctx context.Context, now time.Time, account, model string, u Usage) error {
	_, err := l.pg.Pool().Exec(ctx, `INSERT INTO portico_usage (day, account, model, input_tokens, output_tokens, requests) VALUES ($1, $2, $3, $4, $5, 1)
ON CONFLICT (day, account, model) DO UPDATE SET input_tokens = portico_usage.input_tokens + EXCLUDED.input_tokens,
	output_tokens = portico_usage.output_tokens + EXCLUDED.output_tokens, requests = portico_usage.requests + 1`,
		now.Format(dayFormat), account, model, max(0, u.InputTokens), max(0, u.OutputTokens))
	return l.pg.Fail(ctx, err)
}

// pgSum adds up account's tokens over the days ending today.
func (l *ledger) pgSum(ctx context.Context, account string, today time.Time, days int) (int64, error) {
	var total int64
	err := l.pg.Pool().QueryRow(ctx, `SELECT coalesce(sum(input_tokens + output_tokens), 0)::bigint FROM portico_usage
WHERE account = $1 AND day BETWEEN $2 AND $3`, account, today.AddDate(0, 0, -(days-1)).Format(dayFormat), today.Format(dayFormat)).Scan(&total)
	return total, l.pg.Fail(ctx, err)
}

// pgRows hands add every account and model's totals since the day since,
// of accounts only when accounts is not nil.
func (l *ledger) pgRows(ctx context.Context, since time.Time, accounts []string, add func(account, model string, r row)) error {
	q := `SELECT account, model, sum(input_tokens)::bigint, sum(output_tokens)::bigint, sum(requests)::bigint FROM portico_usage WHERE day >= $1`
	args := []any{since.Format(dayFormat)}
	if accounts != nil {
		q += ` AND account = ANY($2)`
		args = append(args, accounts)
	}
	rows, err := l.pg.Pool().Query(ctx, q+` GROUP BY account, model`, args...)
	if err != nil {
		return l.pg.Fail(ctx, err)
	}
	defer rows.Close()
	for rows.Next() {
		var account, model string
		var in, out, n int64
		if err := rows.Scan(&account, &model, &in, &out, &n); err != nil {
			return l.pg.Fail(ctx, err)
		}
		add(account, model, row{uint64(in), uint64(out), uint64(n)})
	}
	return l.pg.Fail(ctx, rows.Err())
}
