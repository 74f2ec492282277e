package sdk

import (
	"iter"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/porticohq/portico/sdk/internal/jsonstr"
)

// Reading JSON without reflection. encoding/json costs a Go guest tens of
// microseconds a call (reflection, in WebAssembly); JSON validates a
// payload in one pass and the getters find fields by scanning its text,
// allocating nothing but the strings they return.

// maxDepth is the deepest nesting of arrays and objects JSON accepts, the
// same limit as encoding/json's.
const maxDepth = 10000

// A JSONError reports input that is not valid JSON, a value that is not of
// the type asked for, or a value Object or Array could not write. Offset is
// the byte offset (from 0) in the text where the problem is, or -1 for a
// value written; Key is the field being read or written, if any; Msg says
// what was expected and what was found.
type JSONError struct {
	Offset int
	Key    string
	Msg    string
}

// Error returns the message, e.g.
// `json: field "limit" at offset 9: expected a number, found a string`.
func (e *JSONError) Error() string {
	where := ""
	if e.Key != "" {
		where = "field " + strconv.Quote(e.Key) + " "
	}
	if e.Offset >= 0 {
		where += "at offset " + strconv.Itoa(e.Offset) + " "
	}
	if where == "" {
		return "json: " + e.Msg
	}
	return "json: " + where[:len(where)-1] + ": " + e.Msg
}

// Kind is the type of a JSON value.
type Kind uint8

// The kinds of JSON values. KindNone is no value at all: a field that is
// not there, or a document that does not parse.
const (
	KindNone Kind = iota
	KindNull
	KindBool
	KindNumber
	KindString
	KindArray
	KindObject
)

var kindNames = [...]string{"none", "null", "boolean", "number", "string", "array", "object"}

// String returns the kind's name: "none", "null", "boolean", "number",
// "string", "array" or "object".
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// article returns the kind's name with "a" or "an", for messages.
func (k Kind) article() string {
	switch k {
	case KindNull:
		return "null"
	case KindArray, KindObject:
		return "an " + k.String()
	}
	return "a " + k.String()
}

// Value is a JSON value read with JSON: a view of its text in the input
// (no copy), plus the document's first error, which every Value read from
// the same document shares.
//
// Reading is lenient about absence and strict about types, like decoding
// into a struct with encoding/json: a missing field or a null reads as the
// zero value without an error, a value of another type reads as the zero
// value and records an error (the first one is kept), and Err reports it.
// So a skill reads all its fields and checks once:
//
//	q := sdk.JSON(in.Payload)
//	url, limit := q.String("url"), q.Int("limit")
//	if err := q.Err(); err != nil {
//		return nil, sdk.BadInput("want {\"url\": \"...\", \"limit\": N}: %v", err)
//	}
//
// Field names match exactly (encoding/json, decoding into a struct, also
// matches them case-insensitively); if a name is repeated, the last one
// counts, as in encoding/json. The zero Value is a missing value.
type Value struct {
	raw []byte // the value's text; nil when there is no value
	off int    // raw's offset in the document, for errors
	key string // the field name the value was read as, for errors
	err *error // the document's first error
}

// JSON reads data as one JSON value (an object, usually) and returns it.
// It checks the whole text first, as strictly as encoding/json.Valid: if
// the text is not valid JSON, Err reports where and why, and every getter
// returns its zero value.
//
// The Value and the []byte results of Raw point into data; strings are
// copied. Strings are decoded like encoding/json decodes them: escapes
// including \uXXXX and surrogate pairs, and each byte of invalid UTF-8 (and
// each unpaired surrogate escape) becomes U+FFFD, the replacement
// character. Invalid UTF-8 does not make the text invalid.
func JSON(data []byte) Value {
	// Small enough to inline, so that the error slot can live on the
	// caller's stack.
	v := Value{err: new(error)}
	v.raw, v.off = parse(data, v.err)
	return v
}

// parse validates data and returns its value's text and offset, or sets
// *err.
func parse(data []byte, err *error) ([]byte, int) {
	s := scanner{b: data}
	s.ws()
	start := s.i
	if e := s.document(); e != nil {
		*err = e
		return nil, 0
	}
	return data[start:s.end], start
}

// Err returns the first error of the document the value was read from:
// invalid JSON, or a value of the wrong type read by a getter. It is nil
// when everything read so far was fine.
func (v Value) Err() error {
	if v.err == nil {
		return nil
	}
	return *v.err
}

// Kind returns the value's kind; KindNone when there is no value.
func (v Value) Kind() Kind {
	if len(v.raw) == 0 {
		return KindNone
	}
	switch v.raw[0] {
	case 'n':
		return KindNull
	case 't', 'f':
		return KindBool
	case '"':
		return KindString
	case '[':
		return KindArray
	case '{':
		return KindObject
	}
	return KindNumber
}

// Raw returns the value's JSON text as it is in the input (not compacted),
// or nil when there is no value. It points into the input: copy it to keep
// it after the call.
func (v Value) Raw() []byte { return v.raw }

// Get returns the field key of an object. On a missing value or null it
// returns no value; on another kind it records an error and returns no
// value.
func (v Value) Get(key string) Value {
	out := Value{key: key, err: v.err}
	if !v.is(KindObject) {
		return out
	}
	b := v.raw
	for i := skipWS(b, 1); b[i] != '}'; {
		kEnd := skipString(b, i)
		name := b[i+1 : kEnd-1]
		i = skipWS(b, skipWS(b, kEnd)+1)
		end := skipValue(b, i)
		if keyEqual(name, key) {
			out.raw, out.off = b[i:end], v.off+i
		}
		if i = skipWS(b, end); b[i] == ',' {
			i = skipWS(b, i+1)
		}
	}
	return out
}

// Has reports whether an object has the field key (null counts as there).
func (v Value) Has(key string) bool { return v.Get(key).raw != nil }

// String returns the string field key of an object ("" when it is missing
// or null). It is v.Get(key).AsString().
func (v Value) String(key string) string { return v.Get(key).AsString() }

// Int returns the integer field key of an object (0 when it is missing or
// null). It is v.Get(key).AsInt().
func (v Value) Int(key string) int { return v.Get(key).AsInt() }

// Float returns the number field key of an object (0 when it is missing or
// null). It is v.Get(key).AsFloat().
func (v Value) Float(key string) float64 { return v.Get(key).AsFloat() }

// Bool returns the boolean field key of an object (false when it is
// missing or null). It is v.Get(key).AsBool().
func (v Value) Bool(key string) bool { return v.Get(key).AsBool() }

// AsString returns the value as a string, unescaped (a copy, safe to
// keep). A missing value or null is ""; another kind records an error.
func (v Value) AsString() string {
	if !v.is(KindString) {
		return ""
	}
	s := v.raw[1 : len(v.raw)-1]
	if plain(s) {
		return string(s)
	}
	b := jsonstr.Unescape(make([]byte, 0, len(s)+8), s)
	return unsafe.String(unsafe.SliceData(b), len(b)) // b is ours alone
}

// AsInt returns the value as an int: a JSON number without a fraction or
// an exponent, in range, as encoding/json decodes into an int. A missing
// value or null is 0; anything else records an error.
func (v Value) AsInt() int {
	if !v.is(KindNumber) {
		return 0
	}
	b := v.raw
	neg := b[0] == '-'
	if neg {
		b = b[1:]
	}
	limit := uint64(maxInt)
	if neg {
		limit++
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			v.fail(v.off, "expected an integer, found "+excerpt(v.raw))
			return 0
		}
		if d := uint64(c - '0'); n <= (limit-d)/10 {
			n = n*10 + d
		} else {
			n = limit + 1 // out of range; the other digits are still checked
		}
	}
	if n > limit {
		v.fail(v.off, "expected an integer, found "+excerpt(v.raw)+", out of range")
		return 0
	}
	if neg {
		return -int(n) // n is at most -minInt, which wraps to minInt
	}
	return int(n)
}

const maxInt = int(^uint(0) >> 1)

// AsFloat returns the value as a float64. A missing value or null is 0;
// another kind, or a number out of float64's range, records an error.
func (v Value) AsFloat() float64 {
	if !v.is(KindNumber) {
		return 0
	}
	f, err := strconv.ParseFloat(unsafe.String(unsafe.SliceData(v.raw), len(v.raw)), 64)
	if err != nil {
		v.fail(v.off, "expected a number in float64's range, found "+excerpt(v.raw))
		return 0
	}
	return f
}

// AsBool returns the value as a bool. A missing value or null is false;
// another kind records an error.
func (v Value) AsBool() bool {
	return v.is(KindBool) && v.raw[0] == 't'
}

// Items returns an iterator over the elements of an array, with their
// indexes. On a missing value or null it yields nothing; on another kind
// it records an error and yields nothing.
//
//	for _, item := range sdk.JSON(b).Items() { names = append(names, item.AsString()) }
func (v Value) Items() iter.Seq2[int, Value] {
	return func(yield func(int, Value) bool) {
		if !v.is(KindArray) {
			return
		}
		b := v.raw
		for n, i := 0, skipWS(b, 1); b[i] != ']'; n++ {
			end := skipValue(b, i)
			if !yield(n, Value{raw: b[i:end], off: v.off + i, err: v.err}) {
				return
			}
			if i = skipWS(b, end); b[i] == ',' {
				i = skipWS(b, i+1)
			}
		}
	}
}

// Fields returns an iterator over the fields of an object, in the order of
// the text, repeated names included. On a missing value or null it yields
// nothing; on another kind it records an error and yields nothing.
func (v Value) Fields() iter.Seq2[string, Value] {
	return func(yield func(string, Value) bool) {
		if !v.is(KindObject) {
			return
		}
		b := v.raw
		for i := skipWS(b, 1); b[i] != '}'; {
			kEnd := skipString(b, i)
			key := Value{raw: b[i:kEnd]}.AsString()
			i = skipWS(b, skipWS(b, kEnd)+1)
			end := skipValue(b, i)
			if !yield(key, Value{raw: b[i:end], off: v.off + i, key: key, err: v.err}) {
				return
			}
			if i = skipWS(b, end); b[i] == ',' {
				i = skipWS(b, i+1)
			}
		}
	}
}

// is reports whether v is of kind k. A missing value or null is not, with
// no error; another kind records one.
func (v Value) is(k Kind) bool {
	got := v.Kind()
	if got == k {
		return true
	}
	if got != KindNone && got != KindNull {
		v.fail(v.off, "expected "+k.article()+", found "+got.article())
	}
	return false
}

// fail records an error for v unless the document has one already.
func (v Value) fail(off int, msg string) {
	if v.err != nil && *v.err == nil {
		// A copy of the key, so that v does not escape: the error slot
		// JSON makes can then stay on the caller's stack.
		*v.err = &JSONError{Offset: off, Key: strings.Clone(v.key), Msg: msg}
	}
}

// excerpt quotes the start of a value for a message.
func excerpt(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}

// plain reports whether a string's text needs no unescaping: no escapes,
// and ASCII (other bytes may be invalid UTF-8, which decodes as U+FFFD).
func plain(s []byte) bool {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		if x := jsonstr.Load8(s, i); (jsonstr.Has(x, '\\')|x)&jsonstr.Highs != 0 {
			return false
		}
	}
	for _, c := range s[i:] {
		if c == '\\' || c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// keyEqual reports whether the text of a valid JSON string (without its
// quotes) decodes to key.
func keyEqual(name []byte, key string) bool {
	if plain(name) {
		return string(name) == key
	}
	var buf [64]byte
	return string(jsonstr.Unescape(buf[:0], name)) == key
}

// The skip functions move over text already validated, so they do not
// check anything: i is where a value (or whitespace) starts; they return
// where it ends.

func skipWS(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\r' || c == '\t' }

func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		for i+8 <= len(b) && (jsonstr.Has(jsonstr.Load8(b, i), '"')|jsonstr.Has(jsonstr.Load8(b, i), '\\'))&jsonstr.Highs == 0 {
			i += 8
		}
		if i >= len(b) {
			break
		}
		switch b[i] {
		case '"':
			return i + 1
		case '\\':
			i++ // \uXXXX: its hex digits are skipped as plain bytes
		}
	}
	return i
}

func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			// Over anything but quotes and brackets ('[' and ']' are '{'
			// and '}' without the 0x20 bit).
			for i+8 <= len(b) {
				x := jsonstr.Load8(b, i)
				if y := x | jsonstr.Ones*0x20; (jsonstr.Has(x, '"')|jsonstr.Has(y, '{')|jsonstr.Has(y, '}'))&jsonstr.Highs != 0 {
					break
				}
				i += 8
			}
			if i >= len(b) {
				break
			}
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	}
	for i < len(b) && !isSpace(b[i]) && b[i] != ',' && b[i] != '}' && b[i] != ']' {
		i++
	}
	return i
}

// scanner validates JSON text, as strictly as encoding/json.
type scanner struct {
	b   []byte
	i   int
	end int // where the document's value ends
}

func (s *scanner) ws() { s.i = skipWS(s.b, s.i) }

// document checks that the text is one value between optional whitespace.
func (s *scanner) document() *JSONError {
	if e := s.value(0); e != nil {
		return e
	}
	s.end = s.i
	s.ws()
	if s.i < len(s.b) {
		return s.expected("end of input after the value")
	}
	return nil
}

// expected returns an error at the current offset.
func (s *scanner) expected(what string) *JSONError {
	found := "end of input"
	if s.i < len(s.b) {
		found = describe(s.b[s.i])
	}
	return &JSONError{Offset: s.i, Msg: "expected " + what + ", found " + found}
}

// describe names a byte for a message: 'x', or byte 0x0a.
func describe(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return strconv.QuoteRune(rune(c))
	}
	const hex = "0123456789abcdef"
	return "byte 0x" + string([]byte{hex[c>>4], hex[c&0xf]})
}

// value checks one value at s.i, inside depth arrays and objects.
func (s *scanner) value(depth int) *JSONError {
	if s.i >= len(s.b) {
		return s.expected("a value")
	}
	switch c := s.b[s.i]; c {
	case '{', '[':
		if depth >= maxDepth {
			return &JSONError{Offset: s.i, Msg: "arrays and objects nested deeper than " + strconv.Itoa(maxDepth)}
		}
		if c == '{' {
			return s.object(depth + 1)
		}
		return s.array(depth + 1)
	case '"':
		return s.str()
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	}
	return s.number()
}

func (s *scanner) object(depth int) *JSONError {
	s.i++
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return nil
	}
	for {
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			return s.expected(`a field name (a string in "")`)
		}
		if e := s.str(); e != nil {
			return e
		}
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return s.expected("':' after the field name")
		}
		s.i++
		s.ws()
		if e := s.value(depth); e != nil {
			return e
		}
		s.ws()
		if s.i < len(s.b) {
			switch s.b[s.i] {
			case ',':
				s.i++
				s.ws()
				continue
			case '}':
				s.i++
				return nil
			}
		}
		return s.expected("',' or '}' after a field's value")
	}
}

func (s *scanner) array(depth int) *JSONError {
	s.i++
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		return nil
	}
	for {
		if e := s.value(depth); e != nil {
			return e
		}
		s.ws()
		if s.i < len(s.b) {
			switch s.b[s.i] {
			case ',':
				s.i++
				s.ws()
				continue
			case ']':
				s.i++
				return nil
			}
		}
		return s.expected("',' or ']' after an array element")
	}
}

// str checks a string; s.i is at its opening quote.
func (s *scanner) str() *JSONError {
	end, at, what := jsonstr.Check(s.b, s.i)
	if what != "" {
		s.i = at
		return s.expected(what)
	}
	s.i = end
	return nil
}

func (s *scanner) literal(word string) *JSONError {
	for k := range len(word) {
		if s.i >= len(s.b) || s.b[s.i] != word[k] {
			return s.expected(strconv.QuoteRune(rune(word[k])) + " in " + word)
		}
		s.i++
	}
	return nil
}

// number checks a number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() *JSONError {
	neg := s.b[s.i] == '-'
	if neg {
		s.i++
	}
	switch {
	case s.i < len(s.b) && s.b[s.i] == '0':
		s.i++
	case s.digits() == 0:
		if neg {
			return s.expected("a digit after '-'")
		}
		return s.expected("a value")
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if s.digits() == 0 {
			return s.expected("a digit after '.'")
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if s.digits() == 0 {
			return s.expected("a digit in the exponent")
		}
	}
	return nil
}

func (s *scanner) digits() int {
	start := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i - start
}
