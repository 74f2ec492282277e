package config

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
)

// Field describes one configuration key.
type Field struct {
	Key     string // dotted name, e.g. "http.max_body_bytes"
	Env     string // environment variable, e.g. "PORTICO_HTTP__MAX_BODY_BYTES"
	Doc     string
	Restart bool // a change needs a process restart
	Secret  bool // redacted on every read
	Kind    string
	// MergeByName is set for a list of tables merged by name across layers
	// (tag merge:"name"): a table in the file changes the default table of
	// the same name instead of replacing the whole list.
	MergeByName bool
	index       []int
	typ         reflect.Type
}

var durationType = reflect.TypeFor[Duration]()

// Redacted replaces the value of a secret key in every read of the config.
const Redacted = "[redacted]"

// EnvPrefix starts every environment variable Portico reads.
const EnvPrefix = "PORTICO_"

// Fields lists every configuration key of Config, in declaration order.
func Fields() []Field { return fields }

var (
	fields     = fieldsOf(reflect.TypeFor[Config]())
	fieldByKey = func() map[string]Field {
		m := make(map[string]Field, len(fields))
		for _, f := range fields {
			m[f.Key] = f
		}
		return m
	}()
)

// Lookup returns the Field for a dotted key.
func Lookup(key string) (Field, bool) {
	f, ok := fieldByKey[key]
	return f, ok
}

func fieldsOf(t reflect.Type) []Field {
	var out []Field
	var walk func(t reflect.Type, prefix string, index []int, restart, secret bool, doc string)
	walk = func(t reflect.Type, prefix string, index []int, restart, secret bool, doc string) {
		for i := range t.NumField() {
			sf := t.Field(i)
			name := sf.Tag.Get("koanf")
			if name == "" || !sf.IsExported() {
				continue
			}
			key := prefix + name
			idx := append(append([]int(nil), index...), i)
			r := restart || sf.Tag.Get("reload") == "restart"
			s := secret || sf.Tag.Get("secret") == "true"
			if sf.Type.Kind() == reflect.Struct && sf.Type != durationType {
				walk(sf.Type, key+".", idx, r, s, strings.TrimSpace(doc+" "+sf.Tag.Get("doc")))
				continue
			}
			out = append(out, Field{
				Key:         key,
				Env:         EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "__")),
				Doc:         strings.TrimSpace(doc + " " + sf.Tag.Get("doc")),
				Restart:     r,
				Secret:      s,
				Kind:        kindOf(sf.Type),
				MergeByName: sf.Tag.Get("merge") == "name",
				index:       idx,
				typ:         sf.Type,
			})
		}
	}
	walk(t, "", nil, false, false, "")
	return out
}

func kindOf(t reflect.Type) string {
	switch {
	case t == durationType:
		return "duration"
	case t.Kind() == reflect.String:
		return "string"
	case t.Kind() == reflect.Bool:
		return "bool"
	case t.Kind() == reflect.Int64, t.Kind() == reflect.Int:
		return "integer"
	case t.Kind() == reflect.Float64:
		return "number"
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		return "list of strings"
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct:
		return "list of tables"
	}
	panic(fmt.Sprintf("config: unsupported field type %s", t))
}

// coerce checks that v fits the field's type and returns it in the one form
// the decoder accepts: string, bool, int64, float64, []string, or a duration
// string. It names what it wanted when v does not fit.
func (f Field) coerce(v any) (any, error) {
	switch f.Kind {
	case "string":
		if s, ok := v.(string); ok {
			return s, nil
		}
	case "bool":
		if b, ok := v.(bool); ok {
			return b, nil
		}
	case "integer":
		if n, ok := toInt(v); ok {
			return n, nil
		}
	case "number":
		if x, ok := toFloat(v); ok {
			return x, nil
		}
	case "duration":
		if s, ok := v.(string); ok {
			d, err := time.ParseDuration(s)
			if err != nil {
				return nil, fmt.Errorf("want a duration such as \"30s\" or \"5m\", got %q", s)
			}
			return time.Duration(d).String(), nil
		}
		return nil, fmt.Errorf("want a duration string such as \"30s\" or \"5m\", got %s", describe(v))
	case "list of tables":
		return coerceTables(f, v)
	case "list of strings":
		switch l := v.(type) {
		case []string:
			return append([]string{}, l...), nil
		case []any:
			out := make([]string, 0, len(l))
			for i, e := range l {
				s, ok := e.(string)
				if !ok {
					return nil, fmt.Errorf("want a list of strings, item %d is %s", i, describe(e))
				}
				out = append(out, s)
			}
			return out, nil
		}
	}
	return nil, fmt.Errorf("want %s, got %s", article(f.Kind), describe(v))
}

// parse reads an environment variable's or flag's text into the field's type.
// Lists are comma-separated.
func (f Field) parse(s string) (any, error) {
	switch f.Kind {
	case "bool":
		b, err := strconv.ParseBool(s)
		if err != nil {
			return nil, fmt.Errorf("want true or false, got %q", s)
		}
		return b, nil
	case "integer":
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("want an integer, got %q", s)
		}
		return n, nil
	case "number":
		x, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return nil, fmt.Errorf("want a number, got %q", s)
		}
		return x, nil
	case "list of tables":
		return nil, fmt.Errorf("a list of tables is set in the config file only")
	case "list of strings":
		out := []string{}
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
		return out, nil
	}
	return f.coerce(s)
}

func toInt(v any) (int64, bool) {
	switch n := v.(type) {
	case int:
		return int64(n), true
	case int64:
		return n, true
	case int32:
		return int64(n), true
	case uint64:
		if n <= math.MaxInt64 {
			return int64(n), true
		}
	case float64:
		if n == math.Trunc(n) && math.Abs(n) < 1<<53 {
			return int64(n), true
		}
	case json.Number:
		i, err := n.Int64()
		return i, err == nil
	}
	return 0, false
}

func toFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case json.Number:
		x, err := n.Float64()
		return x, err == nil
	}
	if i, ok := toInt(v); ok {
		return float64(i), true
	}
	return 0, false
}

func article(kind string) string {
	switch kind {
	case "integer":
		return "an integer"
	case "list of strings":
		return "a list of strings"
	}
	return "a " + kind
}

func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return fmt.Sprintf("string %q", x)
	case bool:
		return fmt.Sprintf("boolean %v", x)
	case map[string]any:
		return "a table"
	case []any:
		return "a list"
	}
	if _, ok := toFloat(v); ok {
		return fmt.Sprintf("number %v", v)
	}
	return fmt.Sprintf("%T", v)
}

// Flat returns c as a map from dotted key to value (durations as strings),
// with secrets redacted when redact is set.
func (c *Config) Flat(redact bool) map[string]any {
	return flatOf(reflect.ValueOf(c).Elem(), fields, redact)
}

func flatOf(v reflect.Value, fs []Field, redact bool) map[string]any {
	out := make(map[string]any, len(fs))
	for _, f := range fs {
		fv := v.FieldByIndex(f.index)
		var x any
		switch f.Kind {
		case "duration":
			x = fv.Interface().(Duration).D().String()
		case "list of strings":
			x = append([]string{}, fv.Interface().([]string)...)
		case "list of tables":
			x = tablesOf(fv, redact)
		default:
			x = fv.Interface()
		}
		if redact && f.Secret && !fv.IsZero() {
			x = Redacted
		}
		out[f.Key] = x
	}
	return out
}

// Nested returns c as nested maps keyed like the config file, with secrets
// redacted when redact is set.
func (c *Config) Nested(redact bool) map[string]any {
	return nest(c.Flat(redact))
}

func nest(flat map[string]any) map[string]any {
	keys := make([]string, 0, len(flat))
	for k := range flat {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := map[string]any{}
	for _, k := range keys {
		parts := strings.Split(k, ".")
		m := out
		for _, p := range parts[:len(parts)-1] {
			sub, ok := m[p].(map[string]any)
			if !ok {
				sub = map[string]any{}
				m[p] = sub
			}
			m = sub
		}
		m[parts[len(parts)-1]] = flat[k]
	}
	return out
}

// coerceTables checks a list of tables against the element struct
// strictly (unknown keys and wrong types are errors naming the item) and
// returns it as a list of maps in the one form the decoder and the file
// encoders agree on (see normalTable). A null value is kept: it removes that
// key (see mergeTables). In a list merged by name, a name listed twice is an
// error.
func coerceTables(f Field, v any) (any, error) {
	list, ok := v.([]any)
	if !ok {
		if m, isMaps := v.([]map[string]any); isMaps {
			for _, x := range m {
				list = append(list, x)
			}
		} else {
			return nil, fmt.Errorf("want a list of tables ([[%s]] in TOML), got %s", f.Key, describe(v))
		}
	}
	out := make([]any, 0, len(list))
	names := map[string]int{}
	for i, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("item %d: want a table, got %s", i, describe(item))
		}
		dst := reflect.New(f.typ.Elem())
		dec, _ := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
			DecodeHook: mapstructure.TextUnmarshallerHookFunc(), ErrorUnused: true, TagName: "koanf", Result: dst.Interface(),
		})
		if err := dec.Decode(m); err != nil {
			return nil, fmt.Errorf("item %d: %v", i, strings.ReplaceAll(err.Error(), "\n", " "))
		}
		if f.MergeByName {
			name, _ := m["name"].(string)
			if name == "" {
				return nil, fmt.Errorf("item %d: every table needs a name", i)
			}
			if j, dup := names[name]; dup {
				return nil, fmt.Errorf("item %d: %q is listed twice (items %d and %d); one table per name", i, name, j, i)
			}
			names[name] = i
		}
		out = append(out, normalTable(dst.Elem(), m))
	}
	return out, nil
}

// normalTable returns the keys of m with the values decoded into the
// struct v, each in one canonical form: durations as strings, integers as
// int64, maps as map[string]any. A JSON number or a YAML integer thus
// becomes the same int64 a TOML file gives, so what PATCH writes reads back
// as it was sent. Null values stay null.
func normalTable(v reflect.Value, m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	t := v.Type()
	for i := range t.NumField() {
		key := t.Field(i).Tag.Get("koanf")
		raw, present := m[key]
		if !present {
			continue
		}
		if raw == nil {
			out[key] = nil
			continue
		}
		fv := v.Field(i)
		switch x := fv.Interface().(type) {
		case Duration:
			out[key] = x.D().String()
		case *bool:
			out[key] = x != nil && *x
		case []string:
			out[key] = append([]string{}, x...)
		case map[string]string:
			mm := make(map[string]any, len(x))
			for k, s := range x {
				mm[k] = s
			}
			out[key] = mm
		default:
			out[key] = x
		}
	}
	return out
}

// mergeTables lays the tables of upper over those of lower, for a list of
// tables merged by name: a table whose name lower already has is merged
// into that one key by key (upper's keys win, a null value removes the
// key), any other is appended. Neither input is changed.
func mergeTables(lower, upper any) []any {
	lo, _ := lower.([]any)
	up, _ := upper.([]any)
	out := make([]any, 0, len(lo)+len(up))
	at := map[string]int{}
	for _, t := range lo {
		m, _ := t.(map[string]any)
		at[tableName(m)] = len(out)
		out = append(out, maps.Clone(m))
	}
	for _, t := range up {
		m, _ := t.(map[string]any)
		i, ok := at[tableName(m)]
		if !ok {
			at[tableName(m)] = len(out)
			i = len(out)
			out = append(out, map[string]any{})
		}
		dst := out[i].(map[string]any)
		for k, v := range m {
			if v == nil {
				delete(dst, k)
			} else {
				dst[k] = v
			}
		}
	}
	return out
}

func tableName(m map[string]any) string {
	s, _ := m["name"].(string)
	return s
}

// tablesOf turns a slice of structs back into maps keyed like the file,
// with the fields tagged secret redacted when redact is set.
func tablesOf(v reflect.Value, redact bool) []any {
	out := make([]any, 0, v.Len())
	for i := range v.Len() {
		item := v.Index(i)
		b, _ := json.Marshal(item.Interface())
		var m map[string]any
		json.Unmarshal(b, &m)
		for j := range item.NumField() {
			sf := item.Type().Field(j)
			if redact && sf.Tag.Get("secret") == "true" && !item.Field(j).IsZero() {
				m[sf.Tag.Get("koanf")] = Redacted
			}
		}
		out = append(out, m)
	}
	return out
}
