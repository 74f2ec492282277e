package llm

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/porticohq/portico/core/internal/store"
)

// The ledger keeps one row per UTC day, account and model under
// "usage/day/<YYYY-MM-DD>/<account>/<model>" (account and model
// path-escaped), holding input tokens, output tokens and requests as three
// big-endian uint64s. A period's totals are a scan of one prefix per day.
type ledger struct {
	kv  store.KV
	pg  *store.Postgres // set: the rows are in portico_usage instead (postgres.go)
	now func() time.Time
	// shared, when set, is the quota window several nodes share; the
	// windows below are the fallback.
	shared Counters

	mu      sync.Mutex
	windows map[string]*window
}

// window is one account's spent tokens over the quota period ending today,
// kept in memory so the quota check costs a map lookup; it is loaded from
// the store on first use and again when the day or the period changes.
type window struct {
	mu     sync.Mutex
	loaded bool
	today  int // the window's last day, as dayNumber
	days   int
	total  int64
}

// dayNumber is a UTC day as 20260310, cheaper to compare than its text.
func dayNumber(t time.Time) int {
	y, m, d := t.UTC().Date()
	return y*10000 + int(m)*100 + d
}

const dayFormat = "2006-01-02"

func newLedger(kv store.KV, now func() time.Time) *ledger {
	pg, _ := kv.(*store.Postgres)
	return &ledger{kv: store.Prefix(kv, "usage/"), pg: pg, now: now, windows: map[string]*window{}}
}

func dayPrefix(day string) []byte { return []byte("day/" + day + "/") }

func rowKey(day, account, model string) []byte {
	return []byte("day/" + day + "/" + url.PathEscape(account) + "/" + url.PathEscape(model))
}

type row struct{ in, out, n uint64 }

func decodeRow(b []byte) row {
	if len(b) != 24 {
		return row{}
	}
	return row{binary.BigEndian.Uint64(b), binary.BigEndian.Uint64(b[8:]), binary.BigEndian.Uint64(b[16:])}
}

func (r row) encode() []byte {
	b := make([]byte, 24)
	binary.BigEndian.PutUint64(b, r.in)
	binary.BigEndian.PutUint64(b[8:], r.out)
	binary.BigEndian.PutUint64(b[16:], r.n)
	return b
}

func (l *ledger) window(account string) *window {
	l.mu.Lock()
	defer l.mu.Unlock()
	w, ok := l.windows[account]
	if !ok {
		w = &window{}
		l.windows[account] = w
	}
	return w
}

// record adds one completion's usage to today's row of account and model,
// and to the account's in-memory window. Holding the window's lock across
// the write keeps a concurrent load from counting it twice.
func (l *ledger) record(ctx context.Context, account, model string, u Usage) error {
	now := l.now().UTC()
	w := l.window(account)
	w.mu.Lock()
	defer w.mu.Unlock()
	var err error
	if l.pg != nil {
		err = l.pgRecord(ctx, now, account, model, u)
	} else {
		err = l.kvRecord(ctx, rowKey(now.Format(dayFormat), account, model), u)
	}
	if err != nil {
		return fmt.Errorf("record usage: %w", err)
	}
	if w.loaded && w.today == dayNumber(now) {
		w.total += u.Total()
	}
	if l.shared != nil && account != "" {
		// The ledger has it; a shared window that failed says so itself
		// (its mode turns local), and is seeded from the ledger again.
		_ = l.shared.AddTokens(account, now.Format(dayFormat), u.Total())
	}
	return nil
}

// kvRecord adds u to the row at key.
func (l *ledger) kvRecord(ctx context.Context, key []byte, u Usage) error {
	return l.kv.Update(ctx, func(tx store.Txn) error {
		var r row
		b, err := tx.Get(key)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return err
		default:
			r = decodeRow(b)
		}
		r.in += uint64(max(0, u.InputTokens))
		r.out += uint64(max(0, u.OutputTokens))
		r.n++
		return tx.Set(key, r.encode())
	})
}

// check refuses account once its tokens over the last days UTC days
// (today included) reach quota. quota 0 or an empty account always pass.
func (l *ledger) check(ctx context.Context, account string, quota int64, days int) error {
	if quota <= 0 || account == "" {
		return nil
	}
	today := l.now().UTC()
	if l.shared != nil {
		days := make([]string, days)
		for d := range days {
			days[d] = today.AddDate(0, 0, -d).Format(dayFormat)
		}
		total, err := l.shared.SumTokens(account, days, func(day string) (int64, error) { return l.daySum(ctx, account, day) })
		if err == nil {
			return quotaError(account, total, quota, len(days))
		}
		// The shared window failed: check this node's own.
	}
	w := l.window(account)
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.loaded || w.today != dayNumber(today) || w.days != days {
		total, err := l.sum(ctx, account, today, days)
		if err != nil {
			return err
		}
		w.loaded, w.today, w.days, w.total = true, dayNumber(today), days, total
	}
	return quotaError(account, w.total, quota, days)
}

// quotaError refuses account when spent reaches quota.
func quotaError(account string, spent, quota int64, days int) error {
	if spent >= quota {
		return fmt.Errorf("%w: key %s spent %d of its %d tokens in the last %d days (llm.key_quota_tokens per llm.quota_period)",
			ErrQuotaExceeded, account, spent, quota, days)
	}
	return nil
}

// daySum is account's tokens of one day (YYYY-MM-DD) in the ledger.
func (l *ledger) daySum(ctx context.Context, account, day string) (int64, error) {
	t, err := time.Parse(dayFormat, day)
	if err != nil {
		return 0, err
	}
	return l.sum(ctx, account, t, 1)
}

// sum adds up account's tokens over the days ending today.
func (l *ledger) sum(ctx context.Context, account string, today time.Time, days int) (int64, error) {
	if l.pg != nil {
		return l.pgSum(ctx, account, today, days)
	}
	var total int64
	for d := range days {
		day := today.AddDate(0, 0, -d).Format(dayFormat)
		err := l.kv.Scan(ctx, append(dayPrefix(day), url.PathEscape(account)+"/"...), store.ScanOptions{}, func(_, v []byte) error {
			r := decodeRow(v)
			total += int64(r.in + r.out)
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("load usage of %s: %w", account, err)
		}
	}
	return total, nil
}

// MaxPeriodDays bounds a usage query's period.
const MaxPeriodDays = 3660

// ParsePeriod reads a usage period: "30d" (days), a Go duration such as
// "24h" or "90m", or a bare number of days. Periods count whole UTC days
// back from today, today included, so "24h" and "1d" both mean today; it
// returns that number of days.
func ParsePeriod(s string) (int, error) {
	s = strings.TrimSpace(s)
	var days int
	if n, ok := strings.CutSuffix(s, "d"); ok {
		v, err := strconv.Atoi(n)
		if err != nil {
			return 0, fmt.Errorf("period %q: want a number of days such as 30d, or a duration such as 24h", s)
		}
		days = v
	} else if v, err := strconv.Atoi(s); err == nil {
		days = v
	} else if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return 0, fmt.Errorf("period %q must be positive", s)
		}
		days = int((d + 24*time.Hour - 1) / (24 * time.Hour))
	} else {
		return 0, fmt.Errorf("period %q: want a number of days such as 30d, or a duration such as 24h", s)
	}
	if days < 1 || days > MaxPeriodDays {
		return 0, fmt.Errorf("period %q: want between 1 and %d days", s, MaxPeriodDays)
	}
	return days, nil
}

// Query selects usage totals.
type Query struct {
	// Days is the period: this many UTC days back from today, today
	// included (see ParsePeriod).
	Days int
	// Accounts limits the totals to these API key ids; nil means all.
	Accounts []string
}

// Totals are tokens and requests summed.
type Totals struct {
	InputTokens  int64 `json:"input_tokens"`
	OutputTokens int64 `json:"output_tokens"`
	Requests     int64 `json:"requests"`
}

func (t *Totals) add(r row) {
	t.InputTokens += int64(r.in)
	t.OutputTokens += int64(r.out)
	t.Requests += int64(r.n)
}

// KeyUsage is one API key's totals. Completions made outside an API
// request (hooks) are counted under key_id "".
type KeyUsage struct {
	KeyID string `json:"key_id"`
	Totals
}

// ModelUsage is one model's totals.
type ModelUsage struct {
	Model string `json:"model"`
	Totals
}

// Report is a period's usage: totals, per key and per model, each list
// ordered by tokens spent, most first.
type Report struct {
	Period  string       `json:"period"`
	Since   time.Time    `json:"since"`
	Totals  Totals       `json:"totals"`
	ByKey   []KeyUsage   `json:"by_key"`
	ByModel []ModelUsage `json:"by_model"`
}

// Usage sums the ledger over a period.
func (s *Service) Usage(ctx context.Context, q Query) (Report, error) {
	if q.Days < 1 || q.Days > MaxPeriodDays {
		return Report{}, fmt.Errorf("usage period: want between 1 and %d days (got %d)", MaxPeriodDays, q.Days)
	}
	l := s.ledger
	today := l.now().UTC().Truncate(24 * time.Hour)
	since := today.AddDate(0, 0, -(q.Days - 1))
	rep := Report{Period: strconv.Itoa(q.Days) + "d", Since: since, ByKey: []KeyUsage{}, ByModel: []ModelUsage{}}
	keys, models := map[string]*Totals{}, map[string]*Totals{}
	if q.Accounts != nil {
		q.Accounts = slices.Clone(q.Accounts)
		slices.Sort(q.Accounts)
		q.Accounts = slices.Compact(q.Accounts) // a key listed twice counts once
	}
	add := func(account, model string, r row) {
		rep.Totals.add(r)
		at(keys, account).add(r)
		at(models, model).add(r)
	}
	if l.pg != nil {
		if err := l.pgRows(ctx, since, q.Accounts, add); err != nil {
			return Report{}, fmt.Errorf("usage: %w", err)
		}
	}
	var prefixes [][]byte
	for d := range q.Days {
		if l.pg != nil {
			break
		}
		p := dayPrefix(since.AddDate(0, 0, d).Format(dayFormat))
		if q.Accounts == nil {
			prefixes = append(prefixes, p)
			continue
		}
		for _, a := range q.Accounts {
			prefixes = append(prefixes, append(bytes.Clone(p), url.PathEscape(a)+"/"...))
		}
	}
	for _, p := range prefixes {
		err := l.kv.Scan(ctx, p, store.ScanOptions{}, func(k, v []byte) error {
			parts := strings.Split(string(k), "/") // day, date, account, model
			if len(parts) != 4 {
				return nil
			}
			account, err1 := url.PathUnescape(parts[2])
			model, err2 := url.PathUnescape(parts[3])
			if err1 != nil || err2 != nil {
				return nil
			}
			add(account, model, decodeRow(v))
			return nil
		})
		if err != nil {
			return Report{}, fmt.Errorf("usage: %w", err)
		}
	}
	for k, t := range keys {
		rep.ByKey = append(rep.ByKey, KeyUsage{KeyID: k, Totals: *t})
	}
	for m, t := range models {
		rep.ByModel = append(rep.ByModel, ModelUsage{Model: m, Totals: *t})
	}
	slices.SortFunc(rep.ByKey, func(a, b KeyUsage) int { return byTokens(a.Totals, b.Totals, a.KeyID, b.KeyID) })
	slices.SortFunc(rep.ByModel, func(a, b ModelUsage) int { return byTokens(a.Totals, b.Totals, a.Model, b.Model) })
	return rep, nil
}

func at(m map[string]*Totals, k string) *Totals {
	t, ok := m[k]
	if !ok {
		t = &Totals{}
		m[k] = t
	}
	return t
}

func byTokens(a, b Totals, an, bn string) int {
	if c := cmp.Compare(b.InputTokens+b.OutputTokens, a.InputTokens+a.OutputTokens); c != 0 {
		return c
	}
	return cmp.Compare(an, bn)
}
