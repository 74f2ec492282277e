package ratelimit

import "hash/maphash"

// Exhausted reports, without taking a token, whether principal's bucket in
// group is empty. A principal with no bucket is not exhausted. It lets a
// caller refuse work before doing it, e.g. checking a credential from an IP
// that has used up its failed attempts.
func (l *Limiter) Exhausted(group, principal string) bool {
	now := l.now()
	s := &l.shards[maphash.String(l.seed, principal)&(shardCount-1)]
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.m[key{group, principal}]
	return b != nil && b.lim.TokensAt(now) < 1
}
