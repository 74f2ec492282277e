package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/a2aproject/a2a-go/a2a"
	"github.com/a2aproject/a2a-go/a2asrv"
	"github.com/go-chi/chi/v5"

	"github.com/porticohq/portico/core/internal/config"
	"github.com/porticohq/portico/core/internal/llm"
	"github.com/porticohq/portico/core/internal/plugin"
	"github.com/porticohq/portico/core/internal/session"
)

// A2AProtocolVersion is the A2A protocol version the agent cards and the
// JSON-RPC endpoint speak (the one github.com/a2aproject/a2a-go v0.3.3
// implements).
const A2AProtocolVersion = "0.3.0"

// agentCard builds the card of the gateway (agent nil) or of a configured
// agent: its skills are the active skills (an agent's: those it lists).
func (a *API) agentCard(r *http.Request, agent *config.A2AAgent) *a2a.AgentCard {
	c := a.d.Config.Config().A2A
	base := strings.TrimSuffix(c.PublicURL, "/")
	if base == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		base = scheme + "://" + r.Host
	}
	name, desc := c.Name, c.Description
	if agent != nil {
		name, desc = agent.Name, agent.Description
		if desc == "" {
			desc = c.Description
		}
	}
	skills := []a2a.AgentSkill{}
	for _, s := range a.d.Plugins.Skills() {
		if !s.Status.Serves() || agent != nil && len(agent.Skills) > 0 && !slices.Contains(agent.Skills, s.Name) {
			continue
		}
		tags := append([]string{"plugin:" + s.Plugin}, s.Triggers...)
		var examples []string
		for _, t := range s.Triggers {
			if strings.HasPrefix(t, "/") {
				examples = append(examples, t+" ...")
			}
		}
		skills = append(skills, a2a.AgentSkill{ID: s.Name, Name: s.Name, Description: s.Description, Tags: tags, Examples: examples})
	}
	return &a2a.AgentCard{
		Name: name, Description: desc, URL: base + "/a2a", Version: a.d.Version,
		ProtocolVersion: A2AProtocolVersion, PreferredTransport: a2a.TransportProtocolJSONRPC,
		Capabilities:       a2a.AgentCapabilities{Streaming: true},
		DefaultInputModes:  []string{"text/plain"},
		DefaultOutputModes: []string{"text/plain"},
		Skills:             skills,
		SecuritySchemes: a2a.NamedSecuritySchemes{
			"bearer": a2a.HTTPAuthSecurityScheme{Scheme: "bearer", Description: "A Portico API key (pk_...) or a JWT"},
			"apiKey": a2a.APIKeySecurityScheme{In: a2a.APIKeySecuritySchemeInHeader, Name: "X-API-Key", Description: "A Portico API key"},
		},
		Security: []a2a.SecurityRequirements{{"bearer": {}}, {"apiKey": {}}},
	}
}

func (a *API) getAgentCard(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, a.agentCard(r, nil))
	return nil
}

func (a *API) listAgentCards(w http.ResponseWriter, r *http.Request) error {
	cards := []*a2a.AgentCard{a.agentCard(r, nil)}
	for _, ag := range a.d.Config.Config().A2A.Agents {
		cards = append(cards, a.agentCard(r, &ag))
	}
	writeJSON(w, http.StatusOK, map[string]any{"agents": cards, "total": len(cards)})
	return nil
}

func (a *API) getNamedAgentCard(w http.ResponseWriter, r *http.Request) error {
	name := chi.URLParam(r, "name")
	for _, ag := range a.d.Config.Config().A2A.Agents {
		if ag.Name == name {
			writeJSON(w, http.StatusOK, a.agentCard(r, &ag))
			return nil
		}
	}
	return Errorf(http.StatusNotFound, CodeNotFound, "no agent %q; agents are configured in [[a2a.agents]]", name)
}

// a2aRPC serves POST /a2a: A2A's JSON-RPC binding (a2a-go's handler) over
// sessions and the message router.
func (a *API) a2aRPC(w http.ResponseWriter, r *http.Request) error {
	max := a.d.Config.Config().A2A.MaxRequestBytes
	body, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	if err != nil {
		return badBody(err)
	}
	if int64(len(body)) > max {
		writeRPCError(w, http.StatusRequestEntityTooLarge, -32600, fmt.Sprintf("the request is larger than %d bytes (a2a.max_request_bytes)", max))
		return nil
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	_ = http.NewResponseController(w).SetWriteDeadline(time.Time{}) // message/stream outlives http.write_timeout
	w.Header().Set("Content-Type", "application/json")
	a2asrv.NewJSONRPCHandler(&a2aHandler{a: a}).ServeHTTP(w, r)
	return nil
}

func writeRPCError(w http.ResponseWriter, status int, code int, msg string) {
	writeJSON(w, status, map[string]any{"jsonrpc": "2.0", "id": nil, "error": map[string]any{"code": code, "message": msg}})
}

// a2aHandler maps A2A onto sessions: a context is a session, a task is one
// turn (a message and the skill's reply). A task's id names its session and
// is the turn's idempotency key there, so tasks/get finds it again (for
// sessions.idempotency_ttl) and a message/send retried with the same
// messageId gives the same task.
type a2aHandler struct{ a *API }

var _ a2asrv.RequestHandler = (*a2aHandler)(nil)

const taskSep = "~"

func taskID(sessionID, owner, messageID string) a2a.TaskID {
	h := sha256.Sum256([]byte(owner + "\x00" + sessionID + "\x00" + messageID))
	return a2a.TaskID(sessionID + taskSep + hex.EncodeToString(h[:12]))
}

func idemOf(id a2a.TaskID) string { return "a2a:" + string(id) }

// textOf joins a message's text parts.
func textOf(m *a2a.Message) string {
	var b strings.Builder
	for _, p := range m.Parts {
		if t, ok := p.(a2a.TextPart); ok {
			if b.Len() > 0 {
				b.WriteByte('\n')
			}
			b.WriteString(t.Text)
		} else if t, ok := p.(*a2a.TextPart); ok && t != nil {
			if b.Len() > 0 {
				b.WriteByte('\n')
			}
			b.WriteString(t.Text)
		}
	}
	return b.String()
}

func principalUser(ctx context.Context) (user string, all bool) {
	p := PrincipalFrom(ctx)
	if p == nil {
		return "", false
	}
	return p.UserID, p.Role >= RoleOperator
}

// prepare checks a message and finds or opens its session.
func (h *a2aHandler) prepare(ctx context.Context, p *a2a.MessageSendParams) (sessionID, text string, id a2a.TaskID, err error) {
	if p == nil || p.Message == nil {
		return "", "", "", fmt.Errorf("%w: params.message is required", a2a.ErrInvalidParams)
	}
	m := p.Message
	if m.TaskID != "" {
		return "", "", "", fmt.Errorf("%w: task %s is complete; send the next message in its context (contextId) without a taskId", a2a.ErrInvalidParams, m.TaskID)
	}
	text = textOf(m)
	if err := h.a.d.Sessions.CheckText(text); err != nil {
		return "", "", "", fmt.Errorf("%w: %v (send the message as text parts)", a2a.ErrInvalidParams, err)
	}
	user, all := principalUser(ctx)
	if m.ContextID != "" {
		se, err := h.a.d.Sessions.Get(ctx, m.ContextID)
		if err != nil || !all && se.Owner != user {
			return "", "", "", fmt.Errorf("%w: no context %q", a2a.ErrInvalidParams, m.ContextID)
		}
		sessionID = se.ID
	} else {
		se, err := h.a.d.Sessions.Create(ctx, session.CreateInput{Channel: "a2a", Owner: user})
		if err != nil {
			return "", "", "", err
		}
		sessionID = se.ID
	}
	if m.ID == "" {
		m.ID = a2a.NewMessageID()
	}
	return sessionID, text, taskID(sessionID, user, m.ID), nil
}

func (h *a2aHandler) post(ctx context.Context, sessionID, text string, id a2a.TaskID, onChunk func(string)) (session.Turn, error) {
	user, all := principalUser(ctx)
	if p := PrincipalFrom(ctx); p != nil && h.a.d.LLM != nil {
		if err := h.a.d.LLM.CheckQuota(ctx, p.KeyID); err != nil {
			return session.Turn{}, err
		}
	}
	llmCtx := ctx
	if p := PrincipalFrom(ctx); p != nil {
		llmCtx = llm.WithAccount(ctx, p.KeyID)
	}
	return h.a.d.Sessions.Post(llmCtx, session.PostInput{SessionID: sessionID, Text: text, Owner: user, AnyOwner: all, IdempotencyKey: idemOf(id), OnChunk: onChunk})
}

func agentMessage(t session.Turn, id a2a.TaskID) *a2a.Message {
	return &a2a.Message{ID: t.Reply.ID, ContextID: t.SessionID, TaskID: id, Role: a2a.MessageRoleAgent, Parts: a2a.ContentParts{a2a.TextPart{Text: t.Reply.Text}}}
}

// taskOf is the completed task of a turn.
func taskOf(t session.Turn, id a2a.TaskID) *a2a.Task {
	at := t.Reply.CreatedAt
	user := &a2a.Message{ID: t.Message.ID, ContextID: t.SessionID, TaskID: id, Role: a2a.MessageRoleUser, Parts: a2a.ContentParts{a2a.TextPart{Text: t.Message.Text}}}
	reply := agentMessage(t, id)
	return &a2a.Task{ID: id, ContextID: t.SessionID,
		Status:    a2a.TaskStatus{State: a2a.TaskStateCompleted, Message: reply, Timestamp: &at},
		Artifacts: []*a2a.Artifact{{ID: a2a.ArtifactID(t.Reply.ID), Name: "reply", Parts: a2a.ContentParts{a2a.TextPart{Text: t.Reply.Text}}}},
		History:   []*a2a.Message{user, reply},
		Metadata:  map[string]any{"skill": t.Reply.Skill},
	}
}

// turnError says whether err is the caller's (a JSON-RPC error) or the
// turn's: a failed skill gives a task in state failed.
func turnError(err error) (callerErr error) {
	switch {
	case errors.Is(err, session.ErrInvalid), errors.Is(err, session.ErrTooLarge), errors.Is(err, session.ErrTerminated),
		errors.Is(err, session.ErrNoRoute):
		return fmt.Errorf("%w: %v", a2a.ErrInvalidParams, err)
	case errors.Is(err, llm.ErrQuotaExceeded): // the session's own check, before the turn
		return fmt.Errorf("%w: %v", a2a.ErrInvalidRequest, err)
	}
	return A2AError(err)
}

// a2aCallerKinds are the kinds of a failed skill call that A2A answers
// with a JSON-RPC error (the request was wrong, or refused for the
// caller); every other kind fails the task, its kind in the task's
// metadata (error_kind). This is A2A's table (the HTTP API, the embedding
// API and MCP have theirs; a test holds them to each other).
var a2aCallerKinds = map[plugin.Kind]error{
	plugin.KindNotFound: a2a.ErrInvalidParams,
	plugin.KindBadInput: a2a.ErrInvalidParams,
	plugin.KindQuota:    a2a.ErrInvalidRequest,
}

// A2AError is the JSON-RPC error A2A answers a failed skill call with, or
// nil when the call fails the task instead.
func A2AError(err error) error {
	k := plugin.KindOf(err)
	if rpc, ok := a2aCallerKinds[k]; ok {
		return fmt.Errorf("%w: %s: %v", rpc, k, err)
	}
	return nil
}

func failedTask(sessionID string, id a2a.TaskID, err error) *a2a.Task {
	now := time.Now().UTC()
	var meta map[string]any
	if k := plugin.KindOf(err); k != "" {
		meta = map[string]any{"error_kind": string(k)}
	}
	return &a2a.Task{ID: id, ContextID: sessionID, Metadata: meta, Status: a2a.TaskStatus{State: a2a.TaskStateFailed, Timestamp: &now,
		Message: &a2a.Message{ID: a2a.NewMessageID(), ContextID: sessionID, TaskID: id, Role: a2a.MessageRoleAgent, Parts: a2a.ContentParts{a2a.TextPart{Text: err.Error()}}}}}
}

func (h *a2aHandler) OnSendMessage(ctx context.Context, p *a2a.MessageSendParams) (a2a.SendMessageResult, error) {
	sessionID, text, id, err := h.prepare(ctx, p)
	if err != nil {
		return nil, err
	}
	t, err := h.post(ctx, sessionID, text, id, nil)
	if err != nil {
		if cerr := turnError(err); cerr != nil {
			return nil, cerr
		}
		return failedTask(sessionID, id, err), nil
	}
	return taskOf(t, id), nil
}

// OnSendMessageStream answers the task as it runs: the task (working), the
// reply as artifact chunks as the skill writes them, and the final status.
func (h *a2aHandler) OnSendMessageStream(ctx context.Context, p *a2a.MessageSendParams) iter.Seq2[a2a.Event, error] {
	return func(yield func(a2a.Event, error) bool) {
		sessionID, text, id, err := h.prepare(ctx, p)
		if err != nil {
			yield(nil, err)
			return
		}
		user := &a2a.Message{ID: p.Message.ID, ContextID: sessionID, TaskID: id, Role: a2a.MessageRoleUser, Parts: a2a.ContentParts{a2a.TextPart{Text: text}}}
		if !yield(&a2a.Task{ID: id, ContextID: sessionID, Status: a2a.TaskStatus{State: a2a.TaskStateWorking}, History: []*a2a.Message{user}}, nil) {
			return
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		chunks := make(chan string)
		type result struct {
			t   session.Turn
			err error
		}
		done := make(chan result, 1)
		go func() {
			t, err := h.post(ctx, sessionID, text, id, func(s string) {
				select {
				case chunks <- s:
				case <-ctx.Done():
				}
			})
			done <- result{t, err}
		}()
		artifact := a2a.ArtifactID(string(id) + "-reply")
		n := 0
		for {
			select {
			case s := <-chunks:
				ev := &a2a.TaskArtifactUpdateEvent{TaskID: id, ContextID: sessionID, Append: n > 0,
					Artifact: &a2a.Artifact{ID: artifact, Name: "reply", Parts: a2a.ContentParts{a2a.TextPart{Text: s}}}}
				n++
				if !yield(ev, nil) {
					return
				}
			case res := <-done:
				if res.err != nil {
					if cerr := turnError(res.err); cerr != nil {
						yield(nil, cerr)
						return
					}
					f := failedTask(sessionID, id, res.err)
					yield(&a2a.TaskStatusUpdateEvent{TaskID: id, ContextID: sessionID, Status: f.Status, Final: true}, nil)
					return
				}
				at := res.t.Reply.CreatedAt
				if n > 0 && !yield(&a2a.TaskArtifactUpdateEvent{TaskID: id, ContextID: sessionID, Append: true, LastChunk: true,
					Artifact: &a2a.Artifact{ID: artifact, Name: "reply", Parts: a2a.ContentParts{a2a.TextPart{Text: ""}}}}, nil) {
					return
				}
				yield(&a2a.TaskStatusUpdateEvent{TaskID: id, ContextID: sessionID, Final: true,
					Status: a2a.TaskStatus{State: a2a.TaskStateCompleted, Message: agentMessage(res.t, id), Timestamp: &at}}, nil)
				return
			}
		}
	}
}

// OnGetTask finds a turn by its task id, in a session the caller may see.
func (h *a2aHandler) OnGetTask(ctx context.Context, q *a2a.TaskQueryParams) (*a2a.Task, error) {
	if q == nil || q.ID == "" {
		return nil, fmt.Errorf("%w: id is required", a2a.ErrInvalidParams)
	}
	sessionID, _, ok := strings.Cut(string(q.ID), taskSep)
	if !ok {
		return nil, a2a.ErrTaskNotFound
	}
	user, all := principalUser(ctx)
	se, err := h.a.d.Sessions.Get(ctx, sessionID)
	if err != nil || !all && se.Owner != user {
		return nil, a2a.ErrTaskNotFound
	}
	// The turn is remembered under the idempotency key of the session's owner.
	t, found, err := h.a.d.Sessions.Replay(ctx, se.Owner, idemOf(q.ID))
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, a2a.ErrTaskNotFound
	}
	return taskOf(t, q.ID), nil
}

func (h *a2aHandler) OnCancelTask(context.Context, *a2a.TaskIDParams) (*a2a.Task, error) {
	return nil, fmt.Errorf("%w: a task is one turn and ends with it", a2a.ErrTaskNotCancelable)
}

func (h *a2aHandler) OnResubscribeToTask(context.Context, *a2a.TaskIDParams) iter.Seq2[a2a.Event, error] {
	return func(yield func(a2a.Event, error) bool) { yield(nil, a2a.ErrUnsupportedOperation) }
}

func (h *a2aHandler) OnGetTaskPushConfig(context.Context, *a2a.GetTaskPushConfigParams) (*a2a.TaskPushConfig, error) {
	return nil, a2a.ErrPushNotificationNotSupported
}

func (h *a2aHandler) OnListTaskPushConfig(context.Context, *a2a.ListTaskPushConfigParams) ([]*a2a.TaskPushConfig, error) {
	return nil, a2a.ErrPushNotificationNotSupported
}

func (h *a2aHandler) OnSetTaskPushConfig(context.Context, *a2a.TaskPushConfig) (*a2a.TaskPushConfig, error) {
	return nil, a2a.ErrPushNotificationNotSupported
}

func (h *a2aHandler) OnDeleteTaskPushConfig(context.Context, *a2a.DeleteTaskPushConfigParams) error {
	return a2a.ErrPushNotificationNotSupported
}

func (h *a2aHandler) OnGetExtendedAgentCard(context.Context) (*a2a.AgentCard, error) {
	return nil, a2a.ErrAuthenticatedExtendedCardNotConfigured
}
