package hostapi

import "testing"

func TestMappedSince(t *testing.T) {
	for _, c := range []struct {
		name          string
		before, after []region
		want          int64
	}{
		{"nothing new", []region{{0, 10}}, []region{{0, 10}}, 0},
		{"a new mapping", []region{{0, 10}}, []region{{0, 10}, {100, 150}}, 50},
		{"an old one unmapped meanwhile", []region{{0, 10}, {20, 60}}, []region{{0, 10}, {100, 150}}, 50},
		{"merged with its old neighbour", []region{{0, 10}}, []region{{0, 30}}, 20},
		{"all unmapped, nothing new", []region{{0, 10}}, nil, 0},
		{"reused an unmapped range", []region{{0, 10}, {20, 60}}, []region{{0, 10}, {20, 50}}, 30},
	} {
		if got := mappedSince(c.before, c.after); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}
