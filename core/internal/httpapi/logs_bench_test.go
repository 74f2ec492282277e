package httpapi

import (
	"bufio"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/porticohq/portico/core/internal/logs"
)

// BenchmarkLogStreamDelay measures how long a logged line takes to reach
// a client of GET /api/v1/logs/stream over loopback HTTP: each iteration
// logs one line and reads the stream until that line arrives.
func BenchmarkLogStreamDelay(b *testing.B) {
	a := newAPI(b, generous)
	key := adminKey(b, a)
	ring := logs.NewRing(10000)
	a.d.Logs = ring
	log := slog.New(logs.NewHandler(slog.NewTextHandler(discardOut{}, nil), ring)).With("module", "webhook")
	srv := httptest.NewServer(a)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/v1/logs/stream?module=webhook", nil)
	req.Header.Set("X-API-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body) // the handler subscribed before it answered
	for i := 0; b.Loop(); i++ {
		want := `"n":` + strconv.Itoa(i) + `}`
		log.Info("tick", "n", i)
		for sc.Scan() {
			if line := sc.Text(); strings.HasPrefix(line, "data: ") && strings.Contains(line, want) {
				break
			}
		}
	}
}

type discardOut struct{}

func (discardOut) Write(p []byte) (int, error) { return len(p), nil }
