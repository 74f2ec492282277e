package session

import (
	"slices"
	"sync"
	"time"
)

// entry is what the index keeps of a session.
type entry struct {
	id, owner, channel, user string
	created, last            int64 // unix nanoseconds
	terminated               bool
	lastMessage              int64
}

func entryOf(se *Session) *entry {
	e := &entry{id: se.ID, owner: se.Owner, channel: se.Channel, user: se.UserID,
		created: se.CreatedAt.UnixNano(), last: se.LastActivity.UnixNano(), terminated: se.TerminatedAt != nil}
	if se.LastMessageAt != nil {
		e.lastMessage = se.LastMessageAt.UnixNano()
	}
	return e
}

// index holds every session in creation order, with per-owner, per-user
// and per-channel lists, so listing picks the shortest list that fits the
// filters and counts an exact total without touching the store.
type index struct {
	mu        sync.RWMutex
	byID      map[string]*entry
	all       []*entry // oldest first
	byOwner   map[string][]*entry
	byUser    map[string][]*entry
	byChannel map[string][]*entry
}

func newIndex() *index {
	return &index{byID: map[string]*entry{}, byOwner: map[string][]*entry{}, byUser: map[string][]*entry{}, byChannel: map[string][]*entry{}}
}

func (x *index) len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.all)
}

func (x *index) get(id string) *entry {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.byID[id]
}

// add appends a new session; sessions are created in time order, and
// sort puts a loaded store back in that order.
func (x *index) add(e *entry) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.byID[e.id] = e
	x.all = append(x.all, e)
	x.byOwner[e.owner] = append(x.byOwner[e.owner], e)
	x.byUser[e.user] = append(x.byUser[e.user], e)
	x.byChannel[e.channel] = append(x.byChannel[e.channel], e)
}

func (x *index) sort() {
	x.mu.Lock()
	defer x.mu.Unlock()
	byCreated := func(a, b *entry) int {
		if a.created != b.created {
			if a.created < b.created {
				return -1
			}
			return 1
		}
		if a.id < b.id {
			return -1
		}
		return 1
	}
	slices.SortFunc(x.all, byCreated)
	for _, m := range []map[string][]*entry{x.byOwner, x.byUser, x.byChannel} {
		for _, l := range m {
			slices.SortFunc(l, byCreated)
		}
	}
}

// update replaces the mutable fields of a session's entry in place.
func (x *index) update(n *entry) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if e := x.byID[n.id]; e != nil {
		e.last, e.terminated, e.lastMessage = n.last, n.terminated, n.lastMessage
	}
}

// Filter selects sessions for List.
type Filter struct {
	Owner    string // "" with AnyOwner: every owner
	AnyOwner bool
	UserID   string
	Channel  string
	Status   Status // "" for any
	Limit    int
	Offset   int
}

// page returns the ids of the page newest first and the exact total.
func (x *index) page(f Filter, idleBefore time.Time) ([]string, int) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	// Start from the shortest list that satisfies one filter: each is a
	// subset of all, so an empty one means no match at all.
	var lists [][]*entry
	if !f.AnyOwner {
		lists = append(lists, x.byOwner[f.Owner])
	}
	if f.UserID != "" {
		lists = append(lists, x.byUser[f.UserID])
	}
	if f.Channel != "" {
		lists = append(lists, x.byChannel[f.Channel])
	}
	list := x.all
	for _, l := range lists {
		if len(l) < len(list) {
			list = l
		}
	}
	cut := idleBefore.UnixNano()
	match := func(e *entry) bool {
		if !f.AnyOwner && e.owner != f.Owner || f.UserID != "" && e.user != f.UserID || f.Channel != "" && e.channel != f.Channel {
			return false
		}
		switch f.Status {
		case Terminated:
			return e.terminated
		case Idle:
			return !e.terminated && e.last <= cut
		case Active:
			return !e.terminated && e.last > cut
		}
		return true
	}
	// With at most one filter, every entry of the list matches: the total
	// is its length and the page a slice of it.
	exact := len(lists) <= 1 && f.Status == ""
	ids := make([]string, 0, min(f.Limit, len(list)))
	if exact {
		for i := len(list) - 1 - f.Offset; i >= 0 && len(ids) < f.Limit; i-- {
			ids = append(ids, list[i].id)
		}
		return ids, len(list)
	}
	total := 0
	for i := len(list) - 1; i >= 0; i-- {
		if !match(list[i]) {
			continue
		}
		if total >= f.Offset && len(ids) < f.Limit {
			ids = append(ids, list[i].id)
		}
		total++
	}
	return ids, total
}

// channelStats returns per channel the number of active sessions and the
// time of its last message.
func (x *index) channelStats(idleBefore time.Time) map[string]ChannelStats {
	x.mu.RLock()
	defer x.mu.RUnlock()
	cut := idleBefore.UnixNano()
	out := make(map[string]ChannelStats, len(x.byChannel))
	for name, l := range x.byChannel {
		var st ChannelStats
		for _, e := range l {
			if !e.terminated && e.last > cut {
				st.ActiveSessions++
			}
			if e.lastMessage > 0 && (st.LastMessageAt == nil || e.lastMessage > st.LastMessageAt.UnixNano()) {
				t := time.Unix(0, e.lastMessage).UTC()
				st.LastMessageAt = &t
			}
		}
		out[name] = st
	}
	return out
}

// ChannelStats are a channel's numbers from the session index.
type ChannelStats struct {
	ActiveSessions int        `json:"active_sessions"`
	LastMessageAt  *time.Time `json:"last_message_at"`
}

// latest returns the newest session of user on channel that is not
// terminated, or "".
func (x *index) latest(channel, user string) string {
	x.mu.RLock()
	defer x.mu.RUnlock()
	l := x.byUser[user]
	for i := len(l) - 1; i >= 0; i-- {
		if e := l[i]; e.channel == channel && !e.terminated {
			return e.id
		}
	}
	return ""
}
