package llm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// dialect is one provider API: how a request is written and a reply read.
type dialect interface {
	// body is the JSON request for model.
	body(req Request, model string, st *settings) ([]byte, error)
	// auth sets the key and version headers.
	auth(h http.Header, key string)
	// decode reads a whole (non-streamed) reply.
	decode(b []byte, r *Reply) error
	// event applies one streamed event to r, passing new text to delta; it
	// reports whether the stream is complete.
	event(ev sseEvent, r *Reply, delta func(string)) (done bool, err error)
}

// retry says whether and when a failed attempt may be tried again.
type retry struct {
	ok    bool
	after time.Duration // the provider's Retry-After, if any
}

// call runs a completion against p under the deadline of the provider (or
// llm.timeout), retrying network errors, 429 and 5xx with exponential
// backoff (a Retry-After longer than the backoff is honoured) as long as
// nothing was streamed to the caller yet.
func (s *Service) call(ctx context.Context, st *settings, p *provider, model string, req Request, obs Observer) (Reply, error) {
	timeout := p.timeout
	if timeout <= 0 {
		timeout = st.timeout
	}
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, errTimeout)
	defer cancel()
	body, err := p.dialect.body(req, model, st)
	if err != nil {
		return Reply{}, err
	}
	delta := func(string) {}
	if req.Stream && obs.OnDelta != nil {
		delta = obs.OnDelta
	}
	for attempt := 0; ; attempt++ {
		reply, rt, err := s.attempt(ctx, st, p, body, req.Stream, delta)
		if err == nil {
			reply.Model, reply.Provider = model, p.name
			return reply, nil
		}
		if ctx.Err() != nil {
			if errors.Is(context.Cause(ctx), errTimeout) {
				return reply, fmt.Errorf("%w: provider %q gave no complete answer within %s (llm.timeout or the provider's timeout)", ErrUpstream, p.name, timeout)
			}
			return reply, fmt.Errorf("provider %q: the call was cancelled: %w", p.name, context.Cause(ctx))
		}
		if !rt.ok || attempt >= st.retries {
			if attempt > 0 {
				err = fmt.Errorf("%w (after %d retries)", err, attempt)
			}
			return reply, err
		}
		wait := max(st.backoff<<attempt, rt.after)
		if d, ok := ctx.Deadline(); ok && time.Until(d) < wait {
			return reply, fmt.Errorf("%w (a retry in %s would pass the deadline)", err, wait)
		}
		s.log.DebugContext(ctx, "retrying LLM call", "provider", p.name, "attempt", attempt+1, "wait", wait, "error", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
}

// attempt makes one HTTP call. On failure it says whether a retry may
// help: not once text went to the caller, and never for a 4xx but 429.
func (s *Service) attempt(ctx context.Context, st *settings, p *provider, body []byte, stream bool, delta func(string)) (Reply, retry, error) {
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return Reply{}, retry{}, fmt.Errorf("%w: provider %q: %v", ErrUpstream, p.name, err)
	}
	for k, v := range p.headers {
		hr.Header[k] = v
	}
	hr.Header.Set("Content-Type", "application/json")
	if stream {
		hr.Header.Set("Accept", "text/event-stream")
	} else {
		hr.Header.Set("Accept", "application/json")
	}
	p.dialect.auth(hr.Header, p.key)
	resp, err := s.client.Do(hr)
	if err != nil {
		return Reply{}, retry{ok: true}, &ProviderError{Provider: p.name, Message: err.Error()}
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg := errorMessage(resp.Body)
		rt := retry{ok: resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500, after: retryAfter(resp.Header.Get("Retry-After"))}
		return Reply{}, rt, &ProviderError{Provider: p.name, Status: resp.StatusCode, Message: msg}
	}
	var reply Reply
	if !stream || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		// A server that ignores stream answers whole; that is fine.
		b, err := io.ReadAll(io.LimitReader(resp.Body, st.maxBody+1))
		if err != nil {
			return Reply{}, retry{ok: true}, &ProviderError{Provider: p.name, Message: "reading the reply: " + err.Error()}
		}
		if int64(len(b)) > st.maxBody {
			return Reply{}, retry{}, &ProviderError{Provider: p.name, Status: resp.StatusCode, Message: fmt.Sprintf("the reply is larger than llm.max_response_bytes (%d)", st.maxBody)}
		}
		if err := p.dialect.decode(b, &reply); err != nil {
			return Reply{}, retry{}, &ProviderError{Provider: p.name, Status: resp.StatusCode, Message: "unreadable reply: " + err.Error()}
		}
		if stream && reply.Text != "" {
			delta(reply.Text)
		}
		return reply, retry{}, nil
	}
	var text strings.Builder
	sent := false
	rd := newSSEReader(resp.Body, int(st.maxBody))
	for {
		ev, err := rd.Next()
		if errors.Is(err, io.EOF) {
			if reply.FinishReason != "" {
				break // the provider left out its end marker
			}
			return reply, retry{ok: !sent}, &ProviderError{Provider: p.name, Message: "the stream ended before the reply was complete"}
		}
		if err != nil {
			return reply, retry{ok: !sent && !errors.Is(err, errEventTooLarge)}, &ProviderError{Provider: p.name, Message: "reading the stream: " + err.Error()}
		}
		done, err := p.dialect.event(ev, &reply, func(d string) {
			if d == "" {
				return
			}
			sent = true
			text.WriteString(d)
			delta(d)
		})
		if err != nil {
			return reply, retry{ok: !sent}, &ProviderError{Provider: p.name, Message: err.Error()}
		}
		if done {
			break
		}
	}
	reply.Text = text.String()
	return reply, retry{}, nil
}

// errorMessage reads a provider's error answer: both APIs send
// {"error":{"message":...}}; anything else is shown as text, shortened.
func errorMessage(r io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(r, 8<<10))
	var e struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil && e.Error.Message != "" {
		return shorten(e.Error.Message)
	}
	if s := strings.TrimSpace(string(b)); s != "" {
		return shorten(s)
	}
	return "no message"
}

func shorten(s string) string {
	if len(s) > 512 {
		return s[:512] + "…"
	}
	return s
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, time.Until(t))
	}
	return 0
}
