// Package jsonstr is what the SDK's JSON reader and the middleware SDK
// share: checking and decoding JSON strings, eight bytes at a time,
// without encoding/json (which links reflect and fmt into a guest).
package jsonstr

import "unicode/utf8"

// Eight bytes at a time. In a guest that wazero runs with
// close-on-context-done (the gateway does, for deadlines), every iteration
// of a loop calls back into the host to check for cancellation, at some
// 20 ns each: the loops over text test eight bytes per iteration.
const (
	Ones  = 0x0101010101010101
	Highs = 0x8080808080808080
)

// Load8 returns the 8 bytes at b[i:] as a little-endian word (the compiler
// makes it one load).
func Load8(b []byte, i int) uint64 {
	b = b[i : i+8]
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}

// Has returns a word whose high bits (&Highs) are non-zero if and only if
// a byte of x is c.
func Has(x uint64, c byte) uint64 {
	y := x ^ Ones*uint64(c)
	return (y - Ones) &^ y
}

// Below returns a word whose high bits (&Highs) are non-zero if and only
// if a byte of x is less than n (n <= 0x80).
func Below(x uint64, n byte) uint64 { return (x - Ones*uint64(n)) &^ x }

// Check validates the JSON string that starts at b[i] (a '"'), as
// strictly as encoding/json: it returns where the string ends, or, for
// invalid text, the offset of the problem and what was expected there.
func Check(b []byte, i int) (end, at int, expected string) {
	for i++; i < len(b); i++ {
		for i+8 <= len(b) {
			if x := Load8(b, i); (Has(x, '"')|Has(x, '\\')|Below(x, 0x20))&Highs != 0 {
				break
			}
			i += 8
		}
		if i >= len(b) {
			break
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, 0, ""
		case c == '\\':
			i++
			if i >= len(b) {
				return 0, i, "an escape"
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				for range 4 {
					if i++; i >= len(b) || !IsHex(b[i]) {
						return 0, i, `a hexadecimal digit in a \u escape`
					}
				}
			default:
				return 0, i, `an escape: \" \\ \/ \b \f \n \r \t or \uXXXX`
			}
		case c < 0x20:
			return 0, i, `'"' or a character (control characters must be escaped)`
		}
	}
	return 0, i, `'"' to end the string`
}

// IsHex reports whether c is a hexadecimal digit.
func IsHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// Unescape appends the decoded text of a valid JSON string (without its
// quotes) to dst, as encoding/json decodes it: an unpaired surrogate escape
// and each byte of invalid UTF-8 become U+FFFD.
func Unescape(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		if j := i; j+8 <= len(s) { // copy a run of plain ASCII at once
			for j+8 <= len(s) {
				if x := Load8(s, j); (Has(x, '\\')|x)&Highs != 0 {
					break
				}
				j += 8
			}
			dst = append(dst, s[i:j]...)
			if i = j; i >= len(s) {
				break
			}
		}
		c := s[i]
		if c == '\\' {
			switch c = s[i+1]; c {
			case 'b':
				c = '\b'
			case 'f':
				c = '\f'
			case 'n':
				c = '\n'
			case 'r':
				c = '\r'
			case 't':
				c = '\t'
			case 'u':
				r := hex4(s[i+2:])
				i += 6
				if r >= 0xD800 && r < 0xE000 {
					if r < 0xDC00 && i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
						if r2 := hex4(s[i+2:]); r2 >= 0xDC00 && r2 < 0xE000 {
							dst = utf8.AppendRune(dst, 0x10000+(r-0xD800)<<10+(r2-0xDC00))
							i += 6
							continue
						}
					}
					r = utf8.RuneError
				}
				dst = utf8.AppendRune(dst, r)
				continue
			}
			dst = append(dst, c) // and '"', '\\', '/'
			i += 2
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, c)
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, "\uFFFD"...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return dst
}

// hex4 decodes the 4 hexadecimal digits at the start of b, or returns -1
// (when the text is not 4 hex digits: never for a validated \u escape).
func hex4(b []byte) rune {
	if len(b) < 4 {
		return -1
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}
