package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/porticohq/portico/core/internal/events"
	"github.com/porticohq/portico/core/internal/llm"
	"github.com/porticohq/portico/core/internal/session"
)

// wsIn is a frame a WebSocket client sends.
type wsIn struct {
	Type      string            `json:"type"` // chat, subscribe, unsubscribe, ping
	ID        string            `json:"id,omitempty"`
	SessionID string            `json:"session_id,omitempty"`
	Channel   string            `json:"channel,omitempty"`
	UserID    string            `json:"user_id,omitempty"`
	Metadata  map[string]string `json:"metadata,omitempty"`
	Text      string            `json:"text,omitempty"`
	Events    []string          `json:"events,omitempty"`
	// IdempotencyKey works like the HTTP header for a chat frame.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
}

// wsOut is a frame the gateway sends.
type wsOut struct {
	Type      string        `json:"type"` // chunk, reply, event, error, pong, subscribed
	ID        string        `json:"id,omitempty"`
	SessionID string        `json:"session_id,omitempty"`
	Text      string        `json:"text,omitempty"`
	Turn      *session.Turn `json:"turn,omitempty"`
	Event     *events.Event `json:"event,omitempty"`
	Error     *envelopeBody `json:"error,omitempty"`
	Events    []string      `json:"events,omitempty"`
}

// wsOrigins turns http.cors.allowed_origins into the host patterns the
// WebSocket handshake accepts besides same-origin and origin-less clients.
func wsOrigins(origins []string) []string {
	out := make([]string, 0, len(origins))
	for _, o := range origins {
		if i := strings.Index(o, "://"); i >= 0 {
			o = o[i+3:]
		}
		out = append(out, o)
	}
	return out
}

// wsMaxChats bounds the chat turns one connection runs at once.
const wsMaxChats = 4

// wsConn is one WebSocket client: a reader loop, one writer fed by a
// bounded queue (a client that stops reading is closed once it fills, so
// it never holds up the others), and at most one event subscription.
type wsConn struct {
	a     *API
	c     *websocket.Conn
	r     *http.Request
	ctx   context.Context
	out   chan []byte
	chats chan struct{}

	mu  sync.Mutex
	sub *events.Subscription
	wg  sync.WaitGroup

	closeOnce sync.Once
	cancel    context.CancelFunc
}

func (a *API) websocket(w http.ResponseWriter, r *http.Request) error {
	// The connection outlives the server's read and write timeouts.
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{})
	_ = rc.SetReadDeadline(time.Time{})
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: wsOrigins(a.d.Config.Config().HTTP.CORS.AllowedOrigins)})
	if err != nil {
		return nil // Accept has answered the client
	}
	cfg := a.d.Config.Config().Sessions
	c.SetReadLimit(cfg.MaxMessageBytes + 4096)
	ctx, cancel := a.streamContext(context.WithoutCancel(r.Context()))
	wc := &wsConn{a: a, c: c, r: r, ctx: ctx, cancel: cancel, out: make(chan []byte, cfg.WSQueue), chats: make(chan struct{}, wsMaxChats)}
	go wc.writeLoop(cfg.WSPingInterval.D())
	wc.readLoop()
	wc.close(websocket.StatusNormalClosure, "")
	wc.wg.Wait()
	return nil
}

func (wc *wsConn) close(code websocket.StatusCode, reason string) {
	wc.closeOnce.Do(func() {
		wc.cancel()
		wc.mu.Lock()
		if wc.sub != nil {
			wc.sub.Close()
		}
		wc.mu.Unlock()
		wc.c.Close(code, reason)
	})
}

// send queues a frame; a full queue means the client stopped reading.
func (wc *wsConn) send(f wsOut) {
	b, err := json.Marshal(f)
	if err != nil {
		wc.a.d.Logger.Error("websocket frame not encodable", "error", err)
		return
	}
	select {
	case <-wc.ctx.Done():
	case wc.out <- b:
	default:
		wc.a.d.Logger.Warn("websocket client too slow; closing it", "request_id", RequestID(wc.r.Context()))
		go wc.close(websocket.StatusPolicyViolation, "client too slow: its send queue is full (sessions.ws_queue)")
	}
}

func (wc *wsConn) writeLoop(pingEvery time.Duration) {
	ping := time.NewTicker(pingEvery)
	defer ping.Stop()
	for {
		select {
		case <-wc.ctx.Done():
			return
		case b := <-wc.out:
			ctx, cancel := context.WithTimeout(wc.ctx, pingEvery)
			err := wc.c.Write(ctx, websocket.MessageText, b)
			cancel()
			if err != nil {
				wc.close(websocket.StatusGoingAway, "write failed")
				return
			}
		case <-ping.C:
			ctx, cancel := context.WithTimeout(wc.ctx, pingEvery)
			err := wc.c.Ping(ctx)
			cancel()
			if err != nil {
				wc.close(websocket.StatusGoingAway, "no pong")
				return
			}
		}
	}
}

func (wc *wsConn) fail(id string, err error) {
	var ae *Error
	if !errors.As(err, &ae) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			ae = Errorf(http.StatusRequestEntityTooLarge, CodeTooLarge, "%v", err)
		} else {
			wc.a.d.Logger.Error("websocket request failed", "error", err, "request_id", RequestID(wc.r.Context()))
			ae = Errorf(http.StatusInternalServerError, CodeInternal, "internal error")
		}
	}
	wc.send(wsOut{Type: "error", ID: id, Error: &envelopeBody{Code: ae.Code, Message: ae.Message, Details: ae.Details}})
}

func (wc *wsConn) readLoop() {
	for {
		_, b, err := wc.c.Read(wc.ctx)
		if err != nil {
			if websocket.CloseStatus(err) == -1 && wc.ctx.Err() == nil && !errors.Is(err, context.Canceled) {
				wc.a.d.Logger.Debug("websocket read ended", "error", err)
			}
			return
		}
		var in wsIn
		if err := json.Unmarshal(b, &in); err != nil {
			wc.fail("", Errorf(http.StatusBadRequest, CodeBadRequest, "frame is not a JSON object: %v", err))
			continue
		}
		switch in.Type {
		case "chat":
			select {
			case wc.chats <- struct{}{}:
			default:
				wc.fail(in.ID, Errorf(http.StatusTooManyRequests, CodeRateLimited, "at most %d chats at once per connection", wsMaxChats))
				continue
			}
			wc.wg.Add(1)
			go func() {
				defer wc.wg.Done()
				defer func() { <-wc.chats }()
				if err := wc.chat(in); err != nil {
					wc.fail(in.ID, err)
				}
			}()
		case "subscribe":
			if err := wc.subscribe(in.Events); err != nil {
				wc.fail(in.ID, err)
			}
		case "unsubscribe":
			wc.mu.Lock()
			if wc.sub != nil {
				wc.sub.Close()
				wc.sub = nil
			}
			wc.mu.Unlock()
			wc.send(wsOut{Type: "unsubscribed", ID: in.ID})
		case "ping":
			wc.send(wsOut{Type: "pong", ID: in.ID})
		default:
			wc.fail(in.ID, Errorf(http.StatusBadRequest, CodeBadRequest, "unknown frame type %q; send chat, subscribe, unsubscribe or ping", in.Type))
		}
	}
}

// chat runs one turn; it counts against the caller's sessions_write limit
// like POST /api/v1/chat.
func (wc *wsConn) chat(in wsIn) error {
	a, r := wc.a, wc.r
	p := PrincipalFrom(r.Context())
	if d := a.d.Limits.Allow("sessions_write", p.KeyID); !d.Allowed {
		return Errorf(http.StatusTooManyRequests, CodeRateLimited, "rate limit of group sessions_write exceeded; retry in %ds", max(1, ceilSeconds(d.RetryAfter)))
	}
	if err := a.checkQuota(r); err != nil {
		return err
	}
	user, all := owner(r)
	id := in.SessionID
	if id == "" {
		if t, ok, err := a.d.Sessions.Replay(wc.ctx, user, in.IdempotencyKey); err != nil || ok {
			if ok {
				wc.send(wsOut{Type: "reply", ID: in.ID, SessionID: t.SessionID, Turn: &t})
			}
			return err
		}
		if err := a.d.Sessions.CheckText(in.Text); err != nil {
			return sessionError(err)
		}
		channel := in.Channel
		if channel == "" {
			channel = "ws"
		}
		se, err := a.d.Sessions.Create(wc.ctx, session.CreateInput{Channel: channel, UserID: in.UserID, Metadata: in.Metadata, Owner: user})
		if err != nil {
			return sessionError(err)
		}
		id = se.ID
	}
	ctx := llm.WithAccount(wc.ctx, p.KeyID)
	turn, err := a.d.Sessions.Post(ctx, session.PostInput{SessionID: id, Text: in.Text, Owner: user, AnyOwner: all, IdempotencyKey: in.IdempotencyKey,
		OnChunk: func(text string) { wc.send(wsOut{Type: "chunk", ID: in.ID, SessionID: id, Text: text}) }})
	if err != nil {
		return sessionError(err)
	}
	wc.send(wsOut{Type: "reply", ID: in.ID, SessionID: id, Turn: &turn})
	return nil
}

// subscribe replaces the connection's event subscription.
func (wc *wsConn) subscribe(patterns []string) error {
	if len(patterns) == 0 {
		patterns = []string{"*"}
	}
	for _, p := range patterns {
		if err := events.CheckPattern(p); err != nil {
			return Errorf(http.StatusBadRequest, CodeBadRequest, "events: %v", err)
		}
	}
	sub, err := wc.a.d.Bus.SubscribeAny(patterns, int(wc.a.d.Config.Config().Events.Buffer))
	if err != nil {
		return Errorf(http.StatusBadRequest, CodeBadRequest, "%v", err)
	}
	wc.mu.Lock()
	old := wc.sub
	wc.sub = sub
	wc.mu.Unlock()
	if old != nil {
		old.Close()
	}
	wc.send(wsOut{Type: "subscribed", Events: patterns})
	p := PrincipalFrom(wc.r.Context())
	wc.wg.Add(1)
	go func() {
		defer wc.wg.Done()
		for {
			select {
			case <-wc.ctx.Done():
				return
			case e, ok := <-sub.Events():
				if !ok {
					return
				}
				if e, visible := visibleEvent(p, e); visible {
					wc.send(wsOut{Type: "event", Event: &e})
				}
			}
		}
	}()
	return nil
}
