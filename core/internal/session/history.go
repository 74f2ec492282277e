package session

import (
	"container/list"
	"sync"
)

// historyCache keeps the latest history of recently active sessions, so a
// turn does not read and decode its session's last messages again. An
// entry holds for the message count it was made at: a turn that failed
// after storing its message, or one taken on another node, moves the
// session's count past it, and the history is read from the store again.
// It is bounded by the bytes of text it holds
// (sessions.history_cache_bytes), least recently used out first.
type historyCache struct {
	mu   sync.Mutex
	size int64
	ll   *list.List // of *historyEntry, most recently used first
	byID map[string]*list.Element
}

type historyEntry struct {
	id    string
	count int64         // the session's message count the items end at
	items []HistoryItem // oldest first; never modified once stored
	bytes int64
}

func newHistoryCache() *historyCache {
	return &historyCache{ll: list.New(), byID: map[string]*list.Element{}}
}

// get returns the last n history items of session id at message count
// count, if the cache holds them. The slice must not be modified.
func (c *historyCache) get(id string, count int64, n int) ([]HistoryItem, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byID[id]
	if !ok {
		return nil, false
	}
	e := el.Value.(*historyEntry)
	want := int(min(int64(n), count))
	if e.count != count || len(e.items) < want {
		return nil, false
	}
	c.ll.MoveToFront(el)
	return e.items[len(e.items)-want:], true
}

// put stores items as session id's history at message count count, then
// evicts the least recently used sessions until the cache holds at most
// max bytes of text (0: it holds nothing).
func (c *historyCache) put(id string, count int64, items []HistoryItem, max int64) {
	e := &historyEntry{id: id, count: count, items: items}
	for _, it := range items {
		e.bytes += int64(len(it.Role) + len(it.Text))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byID[id]; ok {
		c.remove(el)
	}
	if max > 0 && e.bytes <= max {
		c.byID[id] = c.ll.PushFront(e)
		c.size += e.bytes
	}
	for c.size > max && c.ll.Len() > 0 {
		c.remove(c.ll.Back())
	}
}

// forget drops a session's entry (the session is deleted).
func (c *historyCache) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byID[id]; ok {
		c.remove(el)
	}
}

func (c *historyCache) remove(el *list.Element) {
	e := c.ll.Remove(el).(*historyEntry)
	delete(c.byID, e.id)
	c.size -= e.bytes
}
