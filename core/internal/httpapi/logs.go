package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/porticohq/portico/core/internal/logs"
)

// logQuery reads the filters of the log routes; bad ones are 400.
func (a *API) logQuery(r *http.Request) (logs.Filter, int, error) {
	f, limit, err := logs.ParseQuery(r.URL.Query(), time.Now(), a.d.Logs.Size())
	if errors.Is(err, logs.ErrQuery) {
		return f, 0, Errorf(http.StatusBadRequest, CodeBadRequest, "%v", err)
	}
	return f, limit, err
}

// listLogs serves GET /api/v1/logs: the newest matching lines, oldest
// first (newest last), and how many lines in memory match.
func (a *API) listLogs(w http.ResponseWriter, r *http.Request) error {
	f, limit, err := a.logQuery(r)
	if err != nil {
		return err
	}
	entries, total := a.d.Logs.Query(f, limit)
	writeJSON(w, http.StatusOK, map[string]any{"entries": entries, "total": total, "limit": limit})
	return nil
}

// logStream serves GET /api/v1/logs/stream as server-sent events, one
// "event: log" with the entry as JSON per line, "id: <seq>", until the
// client goes away. ?limit= (default 0 here) replays that many recent
// lines first; Last-Event-ID resumes after the line it names.
func (a *API) logStream(w http.ResponseWriter, r *http.Request) error {
	f, limit, err := a.logQuery(r)
	if err != nil {
		return err
	}
	backlog := 0
	if r.URL.Query().Has("limit") {
		backlog = limit
	}
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		seq, err := strconv.ParseUint(id, 10, 64)
		if err != nil {
			return Errorf(http.StatusBadRequest, CodeBadRequest, "Last-Event-ID must be the seq of a log line (got %q)", id)
		}
		f.AfterSeq, backlog = seq, a.d.Logs.Size()
	}
	sub := a.d.Logs.Subscribe(f, int(a.d.Config.Config().Log.StreamBuffer), backlog)
	defer sub.Close()
	serveSSE(a, w, r, "log stream", sub.Entries(), func(w io.Writer, e logs.Entry) error {
		if n := sub.TakeDropped(); n > 0 {
			if _, err := fmt.Fprintf(w, "event: dropped\ndata: {\"dropped\":%d}\n\n", n); err != nil {
				return err
			}
		}
		b, err := json.Marshal(e)
		if err != nil {
			return nil
		}
		_, err = fmt.Fprintf(w, "id: %d\nevent: log\ndata: %s\n\n", e.Seq, b)
		return err
	})
	return nil
}
