package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// request builds one request of a scenario.
type request func() (*http.Request, error)

// result is one load run against one target.
type result struct {
	requests int
	errors   int
	firstErr string // the first failure, for diagnosis
	elapsed  time.Duration
	lat      []time.Duration // sorted
}

func (r result) rps() float64 { return float64(r.requests) / r.elapsed.Seconds() }

func (r result) quantile(q float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	i := int(q * float64(len(r.lat)-1))
	return r.lat[i]
}

func newClient(conns int) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			MaxConnsPerHost:     conns,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
		},
	}
}

// do sends one request and drains the answer; a non-2xx answer counts as
// an error, described in the returned string.
func do(c *http.Client, mk request) string {
	req, err := mk()
	if err != nil {
		return err.Error()
	}
	resp, err := c.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Sprintf("%s: %s", resp.Status, b)
	}
	io.Copy(io.Discard, resp.Body)
	return ""
}

// failures counts failed requests and keeps the first one's description.
type failures struct {
	n     atomic.Int64
	once  sync.Once
	first string
}

func (f *failures) add(msg string) {
	if msg == "" {
		return
	}
	f.n.Add(1)
	f.once.Do(func() { f.first = msg })
}

// closedLoop keeps conns requests in flight for d: throughput.
func closedLoop(ctx context.Context, c *http.Client, conns int, d time.Duration, mk request) result {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var mu sync.Mutex
	var all []time.Duration
	var errs failures
	var wg sync.WaitGroup
	start := time.Now()
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 4096)
			for ctx.Err() == nil {
				t := time.Now()
				errs.add(do(c, mk))
				lat = append(lat, time.Since(t))
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(all)
	return result{requests: len(all), errors: int(errs.n.Load()), firstErr: errs.first, elapsed: elapsed, lat: all}
}

// openLoop sends rate requests per second for d on a fixed schedule and
// times each from when it was scheduled, not sent, so a stalled server
// shows in the tail instead of slowing the load (no coordinated omission).
func openLoop(ctx context.Context, c *http.Client, rate int, d time.Duration, mk request) result {
	n := int(float64(rate) * d.Seconds())
	interval := time.Second / time.Duration(rate)
	jobs := make(chan time.Time, n)
	lat := make([]time.Duration, n)
	var errs failures
	var idx atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for at := range jobs {
				errs.add(do(c, mk))
				lat[idx.Add(1)-1] = time.Since(at)
			}
		}()
	}
	start := time.Now()
	for i := range n {
		at := start.Add(time.Duration(i) * interval)
		if w := time.Until(at); w > 0 {
			select {
			case <-time.After(w):
			case <-ctx.Done():
			}
		}
		jobs <- at
	}
	close(jobs)
	wg.Wait()
	elapsed := time.Since(start)
	done := lat[:idx.Load()]
	slices.Sort(done)
	return result{requests: len(done), errors: int(errs.n.Load()), firstErr: errs.first, elapsed: elapsed, lat: done}
}
