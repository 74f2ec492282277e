package session

import (
	"bytes"
	"encoding/json"
	"strings"
)

// replyText takes the reply text out of a skill's output: the "text" field
// of a JSON object (matched as encoding/json matches a field: without
// regard to case, the last of duplicates winning), a JSON string's value,
// or else the output as it is. It validates the output once and then
// walks only the object's top level, instead of decoding it: a skill that
// answers with its whole input (echo does) hands back kilobytes of
// history the reply does not need.
func replyText(out []byte) string {
	out = bytes.TrimSpace(out)
	if len(out) == 0 || out[0] != '{' && out[0] != '"' || !json.Valid(out) {
		return string(out)
	}
	if out[0] == '"' {
		var str string
		if json.Unmarshal(out, &str) == nil {
			return str
		}
		return string(out)
	}
	val, ok := topLevelField(out, "text")
	if !ok || len(val) == 0 || val[0] != '"' {
		return string(out) // absent, null, or not a string (which decoding would refuse)
	}
	var str string
	if json.Unmarshal(val, &str) != nil {
		return string(out)
	}
	return str
}

// topLevelField returns the raw value of the last member of the valid
// JSON object obj whose name equals name without regard to case.
func topLevelField(obj []byte, name string) (val []byte, ok bool) {
	i := skipSpace(obj, 1)
	for i < len(obj) && obj[i] == '"' {
		end := skipString(obj, i)
		key := obj[i:end]
		i = skipSpace(obj, end)
		i = skipSpace(obj, i+1) // the colon
		vend := skipValue(obj, i)
		if keyIs(key, name) {
			val, ok = obj[i:vend], true
		}
		i = skipSpace(obj, vend)
		if i < len(obj) && obj[i] == ',' {
			i = skipSpace(obj, i+1)
		}
	}
	return val, ok
}

// keyIs compares a member name (a JSON string literal, quotes included)
// with name as encoding/json does.
func keyIs(lit []byte, name string) bool {
	if bytes.IndexByte(lit, '\\') < 0 {
		return strings.EqualFold(string(lit[1:len(lit)-1]), name)
	}
	var k string
	return json.Unmarshal(lit, &k) == nil && strings.EqualFold(k, name)
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string literal at b[i].
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

// skipValue returns the index after the (valid) value at b[i].
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = skipString(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return i
	}
	for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\t' && b[i] != '\n' && b[i] != '\r' {
		i++
	}
	return i
}
