package ratelimit

import (
	"testing"
	"time"
)

func TestExhausted(t *testing.T) {
	now := time.Unix(1000, 0)
	l, err := New(Options{Rates: map[string]Rate{"default": {PerSecond: 1, Burst: 2}}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if l.Exhausted("default", "ip") {
		t.Error("a principal with no bucket is exhausted")
	}
	l.Allow("default", "ip")
	if l.Exhausted("default", "ip") {
		t.Error("exhausted with one token left")
	}
	l.Allow("default", "ip")
	if !l.Exhausted("default", "ip") {
		t.Error("not exhausted with no token left")
	}
	if l.Exhausted("other", "ip") || l.Exhausted("default", "other") {
		t.Error("another group or principal is exhausted")
	}
	now = now.Add(time.Second)
	if l.Exhausted("default", "ip") {
		t.Error("still exhausted after a refill")
	}
	if d := l.Allow("default", "ip"); !d.Allowed {
		t.Error("Exhausted took a token")
	}
}
