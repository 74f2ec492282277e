package sdk

import (
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/porticohq/portico/sdk/internal/jsonstr"
)

// Writing JSON without reflection: Object and Array append to one buffer,
// escaping strings the way encoding/json.Marshal does, so a reply is the
// same bytes encoding/json would have written for the same fields in the
// same order.

// Object builds a JSON object, field by field, in the order of the calls:
//
//	return sdk.NewObject().Str("key", key).Int("count", n).Bytes(), nil
//
// Its output is always valid JSON: a value that cannot be written (invalid
// JSON given to Raw, a NaN or infinite Float) is written as null and
// recorded, and Err reports the first such error. Field names are not
// checked for repeats.
type Object struct {
	buf    []byte
	n      int  // fields written
	closed bool // buf ends with the '}' Bytes wrote
	err    error
}

// NewObject returns an empty object.
func NewObject() *Object { return &Object{buf: append(make([]byte, 0, 128), '{')} }

// field writes the separator and the name of the next field.
func (o *Object) field(name string) {
	if o.closed {
		o.buf, o.closed = reopen(o.buf), false
	}
	if o.n > 0 {
		o.buf = append(o.buf, ',')
	}
	o.n++
	o.buf = AppendString(o.buf, name)
	o.buf = append(o.buf, ':')
}

// reopen drops the closing bracket Bytes wrote, in a copy: the slice Bytes
// returned stays as it was.
func reopen(b []byte) []byte { return append(make([]byte, 0, 2*len(b)), b[:len(b)-1]...) }

// note records e, with the field's name, unless an error came first.
func (o *Object) note(name string, e *JSONError) {
	if e != nil && o.err == nil {
		e.Key = name
		o.err = e
	}
}

// Str adds a string field, escaped like encoding/json escapes it.
func (o *Object) Str(name, value string) *Object {
	o.field(name)
	o.buf = AppendString(o.buf, value)
	return o
}

// Int adds an integer field.
func (o *Object) Int(name string, value int) *Object {
	o.field(name)
	o.buf = strconv.AppendInt(o.buf, int64(value), 10)
	return o
}

// Float adds a number field, formatted like encoding/json formats a
// float64. NaN and infinities are not JSON: they are written as null and
// recorded as an error.
func (o *Object) Float(name string, value float64) *Object {
	o.field(name)
	var e *JSONError
	o.buf, e = appendFloat(o.buf, value)
	o.note(name, e)
	return o
}

// Bool adds a boolean field.
func (o *Object) Bool(name string, value bool) *Object {
	o.field(name)
	o.buf = strconv.AppendBool(o.buf, value)
	return o
}

// Null adds a null field.
func (o *Object) Null(name string) *Object {
	o.field(name)
	o.buf = append(o.buf, "null"...)
	return o
}

// Raw adds a field whose value is JSON text, such as a Value's Raw or
// another skill's reply. The text is checked and compacted, and <, >, &,
// U+2028 and U+2029 in it are escaped, as encoding/json.Marshal writes a
// json.RawMessage; text that is not valid JSON is written as null and
// recorded as an error.
func (o *Object) Raw(name string, text []byte) *Object {
	o.field(name)
	var e *JSONError
	o.buf, e = appendRaw(o.buf, text)
	o.note(name, e)
	return o
}

// Strings adds an array of strings (a nil slice as [], not null).
func (o *Object) Strings(name string, values []string) *Object {
	o.field(name)
	o.buf = append(o.buf, '[')
	for i, s := range values {
		if i > 0 {
			o.buf = append(o.buf, ',')
		}
		o.buf = AppendString(o.buf, s)
	}
	o.buf = append(o.buf, ']')
	return o
}

// Object adds a field whose value is the object v, as v.Bytes() would
// return it now.
func (o *Object) Object(name string, v *Object) *Object {
	o.field(name)
	o.buf = append(o.buf, v.Bytes()...)
	if o.err == nil {
		o.err = v.err
	}
	return o
}

// Array adds a field whose value is the array a, as a.Bytes() would return
// it now.
func (o *Object) Array(name string, a *Array) *Object {
	o.field(name)
	o.buf = append(o.buf, a.Bytes()...)
	if o.err == nil {
		o.err = a.err
	}
	return o
}

// Bytes returns the object's JSON text. Fields added afterwards go to a
// copy: a slice Bytes returned does not change.
func (o *Object) Bytes() []byte {
	if !o.closed {
		o.buf, o.closed = append(o.buf, '}'), true
	}
	return o.buf
}

// Err returns the first value that could not be written, or nil.
func (o *Object) Err() error { return o.err }

// Array builds a JSON array, element by element. Like Object, its output
// is always valid JSON; Err reports a value written as null instead.
type Array struct {
	buf    []byte
	n      int
	closed bool
	err    error
}

// NewArray returns an empty array.
func NewArray() *Array { return &Array{buf: append(make([]byte, 0, 128), '[')} }

func (a *Array) elem() {
	if a.closed {
		a.buf, a.closed = reopen(a.buf), false
	}
	if a.n > 0 {
		a.buf = append(a.buf, ',')
	}
	a.n++
}

func (a *Array) note(e *JSONError) {
	if e != nil && a.err == nil {
		a.err = e
	}
}

// Str adds a string.
func (a *Array) Str(value string) *Array {
	a.elem()
	a.buf = AppendString(a.buf, value)
	return a
}

// Int adds an integer.
func (a *Array) Int(value int) *Array {
	a.elem()
	a.buf = strconv.AppendInt(a.buf, int64(value), 10)
	return a
}

// Float adds a number (NaN and infinities: null and an error).
func (a *Array) Float(value float64) *Array {
	a.elem()
	var e *JSONError
	a.buf, e = appendFloat(a.buf, value)
	a.note(e)
	return a
}

// Bool adds a boolean.
func (a *Array) Bool(value bool) *Array {
	a.elem()
	a.buf = strconv.AppendBool(a.buf, value)
	return a
}

// Null adds a null.
func (a *Array) Null() *Array {
	a.elem()
	a.buf = append(a.buf, "null"...)
	return a
}

// Raw adds JSON text, checked and compacted like Object.Raw.
func (a *Array) Raw(text []byte) *Array {
	a.elem()
	var e *JSONError
	a.buf, e = appendRaw(a.buf, text)
	a.note(e)
	return a
}

// Object adds the object v.
func (a *Array) Object(v *Object) *Array {
	a.elem()
	a.buf = append(a.buf, v.Bytes()...)
	if a.err == nil {
		a.err = v.err
	}
	return a
}

// Array adds the array v.
func (a *Array) Array(v *Array) *Array {
	a.elem()
	a.buf = append(a.buf, v.Bytes()...)
	if a.err == nil {
		a.err = v.err
	}
	return a
}

// Len returns the number of elements added.
func (a *Array) Len() int { return a.n }

// Bytes returns the array's JSON text. Elements added afterwards go to a
// copy: a slice Bytes returned does not change.
func (a *Array) Bytes() []byte {
	if !a.closed {
		a.buf, a.closed = append(a.buf, ']'), true
	}
	return a.buf
}

// Err returns the first value that could not be written, or nil.
func (a *Array) Err() error { return a.err }

const hexDigits = "0123456789abcdef"

// AppendString appends s to dst as a JSON string, quoted and escaped
// exactly as encoding/json.Marshal escapes it: ", \ and control characters
// (\b \f \n \r \t, others as \u00XX); <, > and & as \u003c, \u003e and
// \u0026, so the text is safe inside HTML; U+2028 and U+2029 as \u2028 and
// \u2029; and each byte of invalid UTF-8 as \ufffd, the replacement
// character.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		for i+8 <= len(s) && escapes(load8s(s, i)) == 0 {
			i += 8
		}
		if i >= len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// escapes returns a non-zero word if a byte of x needs AppendString's
// attention: below 0x20, '"', '\\', '<', '>', '&', or not ASCII. ('<' and
// '>' are the bytes that are '>' with the 0x02 bit set, '"' and '&' the
// ones that are '&' with the 0x04 bit set.) It is small enough to inline.
func escapes(x uint64) uint64 {
	// x-jsonstr.Ones*0x20 | x has a high bit set in a byte below 0x20 or not ASCII.
	return (x - jsonstr.Ones*0x20 | x | jsonstr.Has(x, '\\') | jsonstr.Has(x|jsonstr.Ones*0x02, '>') | jsonstr.Has(x|jsonstr.Ones*0x04, '&')) & jsonstr.Highs
}

// load8s is load8 for a string.
func load8s(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// appendFloat appends f as encoding/json formats a float64, or null and
// an error for NaN and infinities.
func appendFloat(dst []byte, f float64) ([]byte, *JSONError) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		e := &JSONError{Offset: -1, Msg: "cannot write " + strconv.FormatFloat(f, 'g', -1, 64) + " as JSON; wrote null"}
		return append(dst, "null"...), e
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' { // e-09 to e-9, like encoding/json
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst, nil
}

// appendRaw appends JSON text compacted, escaped like encoding/json.Compact
// with HTML escaping, or null and the error (its offset in text) when the
// text is not valid JSON.
func appendRaw(dst, text []byte) ([]byte, *JSONError) {
	s := scanner{b: text}
	s.ws()
	if e := s.document(); e != nil {
		return append(dst, "null"...), e
	}
	start, inString := 0, false
	for i := 0; i < len(text); i++ {
		if inString { // over the plain bytes of a string (0xE2 is not ASCII)
			for i+8 <= len(text) && escapes(jsonstr.Load8(text, i)) == 0 {
				i += 8
			}
			if i >= len(text) {
				break
			}
		}
		c := text[i]
		switch {
		case inString && c == '\\':
			i++ // the escaped byte is copied as it is
		case c == '"':
			inString = !inString
		case !inString && isSpace(c):
			dst = append(dst, text[start:i]...)
			start = i + 1
		case c == '<' || c == '>' || c == '&':
			dst = append(dst, text[start:i]...)
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			start = i + 1
		case c == 0xE2 && i+2 < len(text) && text[i+1] == 0x80 && text[i+2]&^1 == 0xA8:
			dst = append(dst, text[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[text[i+2]&0xf])
			i += 2
			start = i + 1
		}
	}
	return append(dst, text[start:]...), nil
}
