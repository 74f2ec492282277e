package printf

import (
	"errors"
	"fmt"
	"io"
	"math"
	"testing"
	"time"
)

type stringer struct{}

func (stringer) String() string { return "stringer" }

// TestSprintfLikeFmt: for the values the SDK formats, Sprintf says what
// fmt.Sprintf says.
func TestSprintfLikeFmt(t *testing.T) {
	for _, c := range []struct {
		format string
		args   []any
	}{
		{"plain", nil},
		{"%s and %v", []any{"a", "b"}},
		{"%q", []any{"quote \"me\"\n"}},
		{"%x %X", []any{"hi", []byte{0xab, 0x01}}},
		{"%.3s|%5s|%-5s|", []any{"abcdef", "ab", "ab"}},
		{"%.200s", []any{"short"}},
		{"%d %d %d %d %d", []any{0, -7, int8(-128), int64(math.MinInt64), uint64(math.MaxUint64)}},
		{"%5d|%-5d|%05d|%+d|% d", []any{42, 42, -42, 42, 42}},
		{"%x %X %o %b", []any{255, 255, 8, 5}},
		{"%x", []any{-255}},
		{"%.4d", []any{7}},
		{"%c %q %U", []any{'é', 'x', 0x1F600}},
		{"%v %t", []any{true, false}},
		{"%f %.2f %e %g %G %v", []any{3.14159, 2.0 / 3, 12345.678, 1e21, 1e-7, float32(0.1)}},
		{"%8.3f|%-8.2f|%08.3f|%+.1f", []any{math.Pi, math.E, -math.Pi, 2.25}},
		{"%v %s", []any{errors.New("boom"), io.EOF}},
		{"%v|%s", []any{stringer{}, time.Second}},
		{"%v", []any{nil}},
		{"%v", []any{[]string{"a", "b"}}},
		{"%q", []any{[]string{"a", "b"}}},
		{"100%% sure", nil},
		{"%d", nil},
		{"%s", []any{"a", "extra", 3}},
		{"héllo %s wörld", []any{"ünïcode"}},
		{"%6s|%-6s|", []any{"日本", "日本"}},
	} {
		want := fmt.Sprintf(c.format, c.args...)
		if got := Sprintf(c.format, c.args...); got != want {
			t.Errorf("Sprintf(%q, %v) = %q, fmt says %q", c.format, c.args, got, want)
		}
	}
}

// TestSprintfUnsupported: what fmt would print with reflect, Sprintf
// names as unsupported rather than guessing.
func TestSprintfUnsupported(t *testing.T) {
	type point struct{ X int }
	for _, c := range []struct {
		format string
		arg    any
		want   string
	}{
		{"%v", point{1}, "%!v(unsupported type)"},
		{"%d", "s", "%!d(string)"},
		{"%s", true, "%!s(bool)"},
		{"%f", 3, "%!f(integer)"},
		{"%w", errors.New("x"), "%!w(wrong type)"}, // Sprintf does not wrap
		{"%", nil, "%!(NOVERB)"},
	} {
		if got := Sprintf(c.format, c.arg); got != c.want && !(c.arg == nil && got == c.want+"%!(EXTRA <nil>)") {
			t.Errorf("Sprintf(%q, %v) = %q, want %q", c.format, c.arg, got, c.want)
		}
	}
}

func TestErrorfWraps(t *testing.T) {
	base := errors.New("base")
	err := Errorf("reply to %s: %w", "https://x", base)
	if err.Error() != "reply to https://x: base" || !errors.Is(err, base) {
		t.Errorf("Errorf = %q, errors.Is %v", err, errors.Is(err, base))
	}
	two := Errorf("%w and %w", base, io.EOF)
	if !errors.Is(two, base) || !errors.Is(two, io.EOF) {
		t.Errorf("two wrapped: %v", two)
	}
	if plain := Errorf("no %s", "wrap"); errors.Unwrap(plain) != nil || plain.Error() != "no wrap" {
		t.Errorf("plain: %v", plain)
	}
	if got := Errorf("%w", "not an error").Error(); got != "%!w(wrong type)" {
		t.Errorf("%%w of a string: %q", got)
	}
}

// FuzzSprintf builds one directive from the fuzzer's choices and compares
// with fmt for every supported verb and type combination.
func FuzzSprintf(f *testing.F) {
	f.Add(uint8(0), uint8(0), int8(-1), int8(-1), uint8(0), "s", int64(1), 1.5)
	f.Add(uint8(3), uint8(5), int8(8), int8(2), uint8(2), "ü", int64(-9), -0.25)
	f.Fuzz(func(t *testing.T, flagBits, verbIdx uint8, width, prec int8, kind uint8, s string, i int64, fl float64) {
		type combo struct {
			verbs string
			arg   any
		}
		combos := []combo{
			{"vsqxX", s},
			{"vdxXob", i},
			{"vdxXo", uint32(i)},
			{"vfeEgG", fl},
			{"vt", i%2 == 0},
		}
		c := combos[int(kind)%len(combos)]
		verb := c.verbs[int(verbIdx)%len(c.verbs)]
		format := "%"
		for k, flag := range "-+0 " {
			if flagBits&(1<<k) != 0 {
				format += string(flag)
			}
		}
		if width >= 0 {
			format += fmt.Sprint(width % 30)
		}
		if prec >= 0 {
			format += "." + fmt.Sprint(prec%30)
		}
		format += string(verb)
		// Known, deliberate differences from fmt: none for these combos
		// except the flags fmt applies to strings (0-padding) and %q's +.
		if _, isString := c.arg.(string); isString && flagBits&0b1110 != 0 {
			return
		}
		if _, isBool := c.arg.(bool); isBool && flagBits&0b0100 != 0 {
			return
		}
		want := fmt.Sprintf(format, c.arg)
		if got := Sprintf(format, c.arg); got != want {
			t.Errorf("Sprintf(%q, %#v) = %q, fmt says %q", format, c.arg, got, want)
		}
	})
}
