// Package printf is the SDK's printf: fmt's verbs for the values plugins
// format (strings, byte slices, numbers, booleans, errors and Stringers),
// without linking fmt. fmt brings reflect, os and the unicode tables into
// a guest: ~0.4 MB of module and ~1.2 MB of compiled code per plugin.
//
// Verbs: %v %s %q %d %b %o %x %X %c %U %t %e %E %f %g %G %w %%, with the
// flags - + 0 and space, a width and a precision (not *). A value of
// another type prints as %!v(unsupported type), a missing one as
// %!v(MISSING), and extra ones as %!(EXTRA …), as fmt does.
package printf

import (
	"strconv"
	"unicode/utf8"
)

// Sprintf formats like fmt.Sprintf.
func Sprintf(format string, args ...any) string {
	p := printer{args: args}
	p.run(format)
	return string(p.buf)
}

// Errorf formats like fmt.Errorf: the error's message is Sprintf's, and
// each %w operand is wrapped (errors.Is and errors.As see it).
func Errorf(format string, args ...any) error {
	p := printer{args: args, wrapping: true}
	p.run(format)
	e := &wrapError{msg: string(p.buf), wrapped: p.wrapped}
	return e
}

type wrapError struct {
	msg     string
	wrapped []error
}

func (e *wrapError) Error() string { return e.msg }

// Unwrap returns the %w operands (errors.Is and errors.As walk them).
func (e *wrapError) Unwrap() []error { return e.wrapped }

type printer struct {
	buf      []byte
	args     []any
	next     int
	wrapping bool
	wrapped  []error

	// the current verb's flags
	minus, plus, zero, space bool
	width, prec              int // -1: none
}

func (p *printer) run(f string) {
	for i := 0; i < len(f); {
		j := i
		for j < len(f) && f[j] != '%' {
			j++
		}
		p.buf = append(p.buf, f[i:j]...)
		if j >= len(f) {
			break
		}
		i = j + 1
		p.minus, p.plus, p.zero, p.space, p.width, p.prec = false, false, false, false, -1, -1
	flags:
		for ; i < len(f); i++ {
			switch f[i] {
			case '-':
				p.minus = true
			case '+':
				p.plus = true
			case '0':
				p.zero = true
			case ' ':
				p.space = true
			default:
				break flags
			}
		}
		p.width, i = number(f, i)
		if i < len(f) && f[i] == '.' {
			p.prec, i = number(f, i+1)
			p.prec = max(p.prec, 0)
		}
		if i >= len(f) {
			p.buf = append(p.buf, "%!(NOVERB)"...)
			break
		}
		verb, size := utf8.DecodeRuneInString(f[i:])
		i += size
		if verb == '%' {
			p.buf = append(p.buf, '%')
			continue
		}
		if p.next >= len(p.args) {
			p.buf = append(p.buf, "%!"...)
			p.buf = utf8.AppendRune(p.buf, verb)
			p.buf = append(p.buf, "(MISSING)"...)
			continue
		}
		arg := p.args[p.next]
		p.next++
		if verb == 'v' {
			p.plus = false // fmt's %+v names struct fields; no sign
		}
		p.value(verb, arg)
	}
	if p.next < len(p.args) {
		p.buf = append(p.buf, "%!(EXTRA "...)
		for k, a := range p.args[p.next:] {
			if k > 0 {
				p.buf = append(p.buf, ", "...)
			}
			p.minus, p.plus, p.zero, p.space, p.width, p.prec = false, false, false, false, -1, -1
			if a != nil {
				p.buf = append(p.buf, typeName(a)...)
				p.buf = append(p.buf, '=')
			}
			p.value('v', a)
		}
		p.buf = append(p.buf, ')')
	}
}

// number reads a decimal number at f[i:], -1 if there is none.
func number(f string, i int) (int, int) {
	n := -1
	for ; i < len(f) && '0' <= f[i] && f[i] <= '9'; i++ {
		n = max(n, 0)*10 + int(f[i]-'0')
		if n > 1e6 {
			n = 1e6
		}
	}
	return n, i
}

func (p *printer) value(verb rune, arg any) {
	if verb == 'w' {
		err, ok := arg.(error)
		if !ok || !p.wrapping {
			p.bad(verb, "wrong type")
			return
		}
		p.wrapped = append(p.wrapped, err)
		verb = 'v'
	}
	switch v := arg.(type) {
	case nil:
		p.pad("<nil>")
	case string:
		p.str(verb, v)
	case []byte:
		p.str(verb, string(v))
	case error:
		p.str(verb, v.Error())
	case interface{ String() string }:
		p.str(verb, v.String())
	case bool:
		if verb != 'v' && verb != 't' {
			p.bad(verb, "bool")
			return
		}
		p.pad(strconv.FormatBool(v))
	case int:
		p.int(verb, int64(v), false)
	case int8:
		p.int(verb, int64(v), false)
	case int16:
		p.int(verb, int64(v), false)
	case int32:
		p.int(verb, int64(v), false)
	case int64:
		p.int(verb, v, false)
	case uint:
		p.int(verb, int64(v), true)
	case uint8:
		p.int(verb, int64(v), true)
	case uint16:
		p.int(verb, int64(v), true)
	case uint32:
		p.int(verb, int64(v), true)
	case uint64:
		p.int(verb, int64(v), true)
	case uintptr:
		p.int(verb, int64(v), true)
	case float32:
		p.float(verb, float64(v), 32)
	case float64:
		p.float(verb, v, 64)
	case []string:
		p.buf = append(p.buf, '[')
		for k, s := range v {
			if k > 0 {
				p.buf = append(p.buf, ' ')
			}
			p.str(verb, s)
		}
		p.buf = append(p.buf, ']')
	default:
		p.bad(verb, "unsupported type")
	}
}

// typeName names the types value prints, as fmt's %T would.
func typeName(a any) string {
	switch a.(type) {
	case string:
		return "string"
	case []byte:
		return "[]uint8"
	case bool:
		return "bool"
	case int:
		return "int"
	case int8:
		return "int8"
	case int16:
		return "int16"
	case int32:
		return "int32"
	case int64:
		return "int64"
	case uint:
		return "uint"
	case uint8:
		return "uint8"
	case uint16:
		return "uint16"
	case uint32:
		return "uint32"
	case uint64:
		return "uint64"
	case uintptr:
		return "uintptr"
	case float32:
		return "float32"
	case float64:
		return "float64"
	case []string:
		return "[]string"
	}
	return "?"
}

func (p *printer) bad(verb rune, what string) {
	p.buf = append(p.buf, "%!"...)
	p.buf = utf8.AppendRune(p.buf, verb)
	p.buf = append(p.buf, '(')
	p.buf = append(p.buf, what...)
	p.buf = append(p.buf, ')')
}

func (p *printer) str(verb rune, s string) {
	switch verb {
	case 'v', 's':
		if p.prec >= 0 {
			s = truncate(s, p.prec)
		}
		p.pad(s)
	case 'q':
		if p.prec >= 0 {
			s = truncate(s, p.prec)
		}
		p.pad(strconv.Quote(s))
	case 'x', 'X':
		if p.prec >= 0 && p.prec < len(s) {
			s = s[:p.prec] // bytes, as fmt counts them here
		}
		const digits = "0123456789abcdef0123456789ABCDEF"
		off := 0
		if verb == 'X' {
			off = 16
		}
		b := make([]byte, 0, 2*len(s))
		for k := 0; k < len(s); k++ {
			b = append(b, digits[off+int(s[k]>>4)], digits[off+int(s[k]&15)])
		}
		p.pad(string(b))
	default:
		p.bad(verb, "string")
	}
}

// truncate keeps the first n runes of s.
func truncate(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}

func (p *printer) int(verb rune, v int64, unsigned bool) {
	var s string
	base := 10
	switch verb {
	case 'v', 'd':
	case 'b':
		base = 2
	case 'o':
		base = 8
	case 'x', 'X':
		base = 16
	case 'c':
		p.pad(string(rune(v)))
		return
	case 'q':
		p.pad(strconv.QuoteRune(rune(v)))
		return
	case 'U':
		u := strconv.FormatInt(v, 16)
		for len(u) < 4 {
			u = "0" + u
		}
		p.pad("U+" + upper(u))
		return
	case 'e', 'E', 'f', 'F', 'g', 'G':
		p.bad(verb, "integer")
		return
	default:
		p.bad(verb, "integer")
		return
	}
	if p.prec == 0 && v == 0 {
		p.pad("") // fmt: a zero precision prints no digits for 0
		return
	}
	neg := !unsigned && v < 0
	if unsigned {
		s = strconv.FormatUint(uint64(v), base)
	} else {
		u := uint64(v)
		if neg {
			u = -u
		}
		s = strconv.FormatUint(u, base)
	}
	if verb == 'X' {
		s = upper(s)
	}
	if p.prec >= 0 {
		p.zero = false // fmt: a precision turns off 0-padding of integers
	}
	for p.prec > len(s) {
		s = "0" + s
	}
	p.signed(s, neg)
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

func (p *printer) float(verb rune, v float64, bits int) {
	var c byte
	switch verb {
	case 'v', 'g':
		c = 'g'
	case 'G', 'e', 'E', 'f', 'F':
		c = byte(verb)
		if verb == 'F' {
			c = 'f'
		}
	default:
		p.bad(verb, "float")
		return
	}
	prec := p.prec
	if prec < 0 && c != 'g' && c != 'G' {
		prec = 6
	}
	s := strconv.FormatFloat(v, c, prec, bits)
	neg := len(s) > 0 && s[0] == '-'
	if neg {
		s = s[1:]
	}
	p.signed(s, neg)
}

// signed writes digits s with its sign and the width, zero-padded with
// the 0 flag.
func (p *printer) signed(s string, neg bool) {
	sign := ""
	switch {
	case neg:
		sign = "-"
	case p.plus:
		sign = "+"
	case p.space:
		sign = " "
	}
	if p.zero && !p.minus && p.width > 0 {
		for len(sign)+len(s) < p.width {
			s = "0" + s
		}
	}
	p.pad(sign + s)
}

// pad writes s within the width, on the left unless the - flag is set.
func (p *printer) pad(s string) {
	n := p.width - utf8.RuneCountInString(s)
	if !p.minus {
		for ; n > 0; n-- {
			p.buf = append(p.buf, ' ')
		}
	}
	p.buf = append(p.buf, s...)
	if p.minus {
		for ; n > 0; n-- {
			p.buf = append(p.buf, ' ')
		}
	}
}
