package sdk_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/porticohq/portico/sdk"
)

func TestJSONSyntaxErrors(t *testing.T) {
	tests := []struct {
		in   string
		want string // the error message; "" for valid text
	}{
		{`{"a":1}`, ""},
		{" \t\r\n[1, 2.5e-3, -0, true, false, null, \"x\", {}, []] \n", ""},
		{`"\"\\\/\b\f\n\r\t\u00e9\uD83D\uDE00"`, ""},
		{"\"\xff\xfe invalid UTF-8 is valid JSON text\"", ""},
		{``, `json: at offset 0: expected a value, found end of input`},
		{`   `, `json: at offset 3: expected a value, found end of input`},
		{`{"a":1,}`, `json: at offset 7: expected a field name (a string in ""), found '}'`},
		{`{a:1}`, `json: at offset 1: expected a field name (a string in ""), found 'a'`},
		{`{"a" 1}`, `json: at offset 5: expected ':' after the field name, found '1'`},
		{`{"a":1 "b":2}`, `json: at offset 7: expected ',' or '}' after a field's value, found '"'`},
		{`{"a":1`, `json: at offset 6: expected ',' or '}' after a field's value, found end of input`},
		{`[1 2]`, `json: at offset 3: expected ',' or ']' after an array element, found '2'`},
		{`[1,]`, `json: at offset 3: expected a value, found ']'`},
		{`{}x`, `json: at offset 2: expected end of input after the value, found 'x'`},
		{`1 2`, `json: at offset 2: expected end of input after the value, found '2'`},
		{`01`, `json: at offset 1: expected end of input after the value, found '1'`},
		{`-`, `json: at offset 1: expected a digit after '-', found end of input`},
		{`-x`, `json: at offset 1: expected a digit after '-', found 'x'`},
		{`1.`, `json: at offset 2: expected a digit after '.', found end of input`},
		{`1e+`, `json: at offset 3: expected a digit in the exponent, found end of input`},
		{`+1`, `json: at offset 0: expected a value, found '+'`},
		{`.5`, `json: at offset 0: expected a value, found '.'`},
		{`tru`, `json: at offset 3: expected 'e' in true, found end of input`},
		{`nul1`, `json: at offset 3: expected 'l' in null, found '1'`},
		{`True`, `json: at offset 0: expected a value, found 'T'`},
		{`"abc`, `json: at offset 4: expected '"' to end the string, found end of input`},
		{`"a\x"`, `json: at offset 3: expected an escape: \" \\ \/ \b \f \n \r \t or \uXXXX, found 'x'`},
		{`"\u12g4"`, `json: at offset 5: expected a hexadecimal digit in a \u escape, found 'g'`},
		{`"\u12"`, `json: at offset 5: expected a hexadecimal digit in a \u escape, found '"'`},
		{"\"a\tb\"", `json: at offset 2: expected '"' or a character (control characters must be escaped), found byte 0x09`},
		{"\xef\xbb\xbf{}", `json: at offset 0: expected a value, found byte 0xef`},
		{"'a'", `json: at offset 0: expected a value, found '\''`},
	}
	for _, tt := range tests {
		v := sdk.JSON([]byte(tt.in))
		got := ""
		if err := v.Err(); err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("JSON(%q):\n got %s\nwant %s", tt.in, got, tt.want)
		}
		if (got == "") != json.Valid([]byte(tt.in)) {
			t.Errorf("JSON(%q) disagrees with encoding/json on validity", tt.in)
		}
	}
}

func TestJSONDepth(t *testing.T) {
	for _, tt := range []struct {
		depth int
		ok    bool
	}{{10000, true}, {10001, false}} {
		in := strings.Repeat("[", tt.depth) + strings.Repeat("]", tt.depth)
		err := sdk.JSON([]byte(in)).Err()
		if (err == nil) != tt.ok || json.Valid([]byte(in)) != tt.ok {
			t.Errorf("depth %d: %v (encoding/json valid: %v)", tt.depth, err, json.Valid([]byte(in)))
		}
		if err != nil && !strings.Contains(err.Error(), "nested deeper than 10000") {
			t.Errorf("depth %d: %v", tt.depth, err)
		}
	}
}

const doc = `{
	"s": "a\"b\\c\u00e9\ud83d\ude00",
	"n": -12, "big": 9223372036854775807, "small": -9223372036854775808,
	"over": 9223372036854775808, "frac": 1.5, "exp": 1e3,
	"t": true, "f": false, "z": null,
	"o": {"x": [1, "two", {"three": 3}]},
	"k\u0065y": "escaped name", "dup": 1, "dup": 2
}`

func TestJSONGetters(t *testing.T) {
	v := sdk.JSON([]byte(doc))
	if err := v.Err(); err != nil {
		t.Fatal(err)
	}
	check := func(name string, got, want any) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %#v, want %#v", name, got, want)
		}
	}
	check("String(s)", v.String("s"), "a\"b\\cé😀")
	check("Int(n)", v.Int("n"), -12)
	check("Int(big)", v.Int("big"), math.MaxInt64)
	check("Int(small)", v.Int("small"), math.MinInt64)
	check("Float(frac)", v.Float("frac"), 1.5)
	check("Float(exp)", v.Float("exp"), 1000.0)
	check("Float(n)", v.Float("n"), -12.0)
	check("Bool(t)", v.Bool("t"), true)
	check("Bool(f)", v.Bool("f"), false)
	check("String(key)", v.String("key"), "escaped name")
	check("Int(dup)", v.Int("dup"), 2)
	check("nested", v.Get("o").Get("x").Raw() != nil, true)
	check("Raw(o)", string(v.Get("o").Raw()), `{"x": [1, "two", {"three": 3}]}`)
	check("Kind(o)", v.Get("o").Kind(), sdk.KindObject)
	check("Kind(z)", v.Get("z").Kind(), sdk.KindNull)
	check("Kind(missing)", v.Get("missing").Kind(), sdk.KindNone)
	check("Has(z)", v.Has("z"), true)
	check("Has(missing)", v.Has("missing"), false)
	// Missing fields and nulls read as zero values, without an error.
	check("String(missing)", v.String("missing"), "")
	check("String(z)", v.String("z"), "")
	check("Int(z)", v.Int("z"), 0)
	check("Get(missing).Get(x)", v.Get("missing").Get("x").Kind(), sdk.KindNone)
	check("Get(z).Int(x)", v.Get("z").Int("x"), 0)
	if err := v.Err(); err != nil {
		t.Fatalf("reading zero values recorded %v", err)
	}

	var items []string
	for i, item := range v.Get("o").Get("x").Items() {
		items = append(items, string(rune('0'+i))+":"+item.Kind().String())
	}
	check("Items", strings.Join(items, " "), "0:number 1:string 2:object")
	var names []string
	for name, val := range v.Fields() {
		names = append(names, name)
		if name == "o" && val.Kind() != sdk.KindObject {
			t.Errorf("field o: %v", val.Kind())
		}
	}
	check("Fields", strings.Join(names, " "), "s n big small over frac exp t f z o key dup dup")
	for range v.Get("missing").Items() {
		t.Error("Items of a missing value yielded")
	}
	for range sdk.JSON([]byte(`[]`)).Items() {
		t.Error("Items of [] yielded")
	}
	for range sdk.JSON([]byte(` { } `)).Fields() {
		t.Error("Fields of {} yielded")
	}
	if err := v.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestJSONTypeErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		read func(sdk.Value)
		want string
	}{
		{"string as int", `{"limit":"5"}`, func(v sdk.Value) { v.Int("limit") },
			`json: field "limit" at offset 9: expected a number, found a string`},
		{"fraction as int", `{"limit":2.5}`, func(v sdk.Value) { v.Int("limit") },
			`json: field "limit" at offset 9: expected an integer, found 2.5`},
		{"exponent as int", `{"limit":1e2}`, func(v sdk.Value) { v.Int("limit") },
			`json: field "limit" at offset 9: expected an integer, found 1e2`},
		{"int out of range", `{"n":9223372036854775808}`, func(v sdk.Value) { v.Int("n") },
			`json: field "n" at offset 5: expected an integer, found 9223372036854775808, out of range`},
		{"float out of range", `{"n":1e400}`, func(v sdk.Value) { v.Float("n") },
			`json: field "n" at offset 5: expected a number in float64's range, found 1e400`},
		{"number as string", `{"url":42}`, func(v sdk.Value) { v.String("url") },
			`json: field "url" at offset 7: expected a string, found a number`},
		{"string as bool", `{"ok":"yes"}`, func(v sdk.Value) { v.Bool("ok") },
			`json: field "ok" at offset 6: expected a boolean, found a string`},
		{"field of an array", `[1]`, func(v sdk.Value) { v.Int("limit") },
			`json: at offset 0: expected an object, found an array`},
		{"items of an object", ` {}`, func(v sdk.Value) {
			for range v.Items() {
			}
		}, `json: at offset 1: expected an array, found an object`},
		{"nested", `{"a": {"b": [true]}}`, func(v sdk.Value) { v.Get("a").Get("b").Get("c") },
			`json: field "b" at offset 12: expected an object, found an array`},
		{"element", `["a", 2]`, func(v sdk.Value) {
			for _, item := range v.Items() {
				item.AsString()
			}
		}, `json: at offset 6: expected a string, found a number`},
		{"first error wins", `{"a":1,"b":2}`, func(v sdk.Value) { v.String("a"); v.String("b") },
			`json: field "a" at offset 5: expected a string, found a number`},
		{"syntax error first", `{"a":1,}`, func(v sdk.Value) { v.String("a") },
			`json: at offset 7: expected a field name (a string in ""), found '}'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := sdk.JSON([]byte(tt.in))
			tt.read(v)
			err := v.Err()
			var je *sdk.JSONError
			if err == nil || err.Error() != tt.want || !errors.As(err, &je) {
				t.Errorf("got  %v\nwant %s", err, tt.want)
			}
		})
	}
}

func TestJSONStringsAgreeWithEncodingJSON(t *testing.T) {
	for _, in := range []string{
		`"plain"`,
		`"\ud83d\ude00"`,       // a surrogate pair
		`"\ud800"`,             // a lone high surrogate
		`"\udc00x"`,            // a lone low surrogate
		`"\ud800\u0041"`,       // high surrogate, then not a low one
		`"\ud800\ud800\udc00"`, // unpaired, then a pair
		`"\ud800\\u"`,
		"\"\xff\"",         // invalid UTF-8
		"\"\xe2\x82\"",     // a truncated sequence
		"\"\xed\xa0\x80\"", // an encoded surrogate
		"\"\xc0\xaf\"",     // overlong
		`"\u0000\u001f\u2028"`,
		`"\/\b\f\n\r\t"`,
	} {
		var want string
		if err := json.Unmarshal([]byte(in), &want); err != nil {
			t.Fatal(err)
		}
		v := sdk.JSON([]byte(in))
		if got := v.AsString(); got != want || v.Err() != nil {
			t.Errorf("%s: got %q (%v), want %q", in, got, v.Err(), want)
		}
		// The same text as a field name.
		obj := sdk.JSON([]byte(`{` + in + `:1}`))
		if obj.Int(want) != 1 {
			t.Errorf("field %s not found as %q", in, want)
		}
	}
}

func TestWriter(t *testing.T) {
	inner := sdk.NewObject().Int("x", 1)
	o := sdk.NewObject().
		Str("s", "quote \" backslash \\ <tag> & \u2028 \x01 \xff é").
		Int("n", -7).
		Float("f", 0.000001).
		Float("g", 1e21).
		Float("h", 1.5).
		Bool("t", true).
		Null("z").
		Raw("raw", []byte(" { \"a\" : [1, \"<b>\"] } ")).
		Strings("list", []string{"a", "b"}).
		Strings("none", nil).
		Object("obj", inner).
		Array("arr", sdk.NewArray().Str("x").Int(2).Float(2.5).Bool(false).Null().Raw([]byte("{}")).Object(sdk.NewObject()).Array(sdk.NewArray()))
	want := `{"s":"quote \" backslash \\ \u003ctag\u003e \u0026 \u2028 \u0001 \ufffd é","n":-7,"f":0.000001,"g":1e+21,"h":1.5,"t":true,"z":null,` +
		`"raw":{"a":[1,"\u003cb\u003e"]},"list":["a","b"],"none":[],"obj":{"x":1},"arr":["x",2,2.5,false,null,{},{},[]]}`
	if got := string(o.Bytes()); got != want || o.Err() != nil {
		t.Errorf("got  %s (%v)\nwant %s", got, o.Err(), want)
	}
	if string(sdk.NewObject().Bytes()) != `{}` || string(sdk.NewArray().Bytes()) != `[]` {
		t.Error("empty object or array")
	}

	// Bytes is a snapshot: adding afterwards leaves it as it was.
	a := sdk.NewObject().Int("a", 1)
	first := a.Bytes()
	second := a.Int("b", 2).Bytes()
	if string(first) != `{"a":1}` || string(second) != `{"a":1,"b":2}` || string(a.Bytes()) != string(second) {
		t.Errorf("snapshot: %s then %s", first, second)
	}
	arr := sdk.NewArray()
	empty := arr.Bytes()
	if string(empty) != `[]` || string(arr.Int(1).Bytes()) != `[1]` || string(empty) != `[]` || arr.Len() != 1 {
		t.Errorf("array snapshot: %s %s", empty, arr.Bytes())
	}
}

func TestWriterErrors(t *testing.T) {
	tests := []struct {
		name  string
		build func() ([]byte, error)
		want  string
		err   string
	}{
		{"invalid raw", func() ([]byte, error) {
			o := sdk.NewObject().Raw("data", []byte("not json")).Int("n", 1)
			return o.Bytes(), o.Err()
		}, `{"data":null,"n":1}`, `json: field "data" at offset 1: expected 'u' in null, found 'o'`},
		{"empty raw", func() ([]byte, error) {
			a := sdk.NewArray().Raw(nil)
			return a.Bytes(), a.Err()
		}, `[null]`, `json: at offset 0: expected a value, found end of input`},
		{"NaN", func() ([]byte, error) {
			o := sdk.NewObject().Float("x", math.NaN()).Float("y", math.Inf(1))
			return o.Bytes(), o.Err()
		}, `{"x":null,"y":null}`, `json: field "x": cannot write NaN as JSON; wrote null`},
		{"nested error", func() ([]byte, error) {
			o := sdk.NewObject().Array("a", sdk.NewArray().Float(math.Inf(-1)))
			return o.Bytes(), o.Err()
		}, `{"a":[null]}`, `json: cannot write -Inf as JSON; wrote null`},
	}
	for _, tt := range tests {
		got, err := tt.build()
		if string(got) != tt.want || err == nil || err.Error() != tt.err {
			t.Errorf("%s: %s %v\nwant %s %s", tt.name, got, err, tt.want, tt.err)
		}
	}
}

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	var all strings.Builder
	for r := rune(0); r < 0x3000; r++ {
		all.WriteRune(r)
	}
	for _, s := range []string{"", "plain", all.String(), "\xff\xfe\xed\xa0\x80\xc0\xaf\xe2\x82", "\u2029\ufeff\U0010ffff"} {
		want, _ := json.Marshal(s)
		if got := sdk.AppendString([]byte("x"), s); string(got) != "x"+string(want) {
			t.Errorf("AppendString(%q) = %s, want %s", s, got, want)
		}
	}
}

// FuzzJSON checks the reader and the writer against encoding/json: the
// same verdict on validity, the same decoded values, and writer output that
// encoding/json reads back as the same value (and Raw writing the same
// bytes as json.Marshal of a json.RawMessage).
func FuzzJSON(f *testing.F) {
	for _, s := range []string{
		doc, `{"key":"shop","text":"milk"}`, `[1,-0.5e+7,"\u00e9",null,true,false,{}]`, `"\ud800\udc00\ud800"`,
		"\"\xff<&>\u2028\"", `{"a":1,"a":{"a":[]}}`, ` 0 `, `-`, `{"a"}`, `[1,]`, `"\u12"`, `1e400`, `9223372036854775808`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v := sdk.JSON(data)
		valid := json.Valid(data)
		if err := v.Err(); (err == nil) != valid {
			t.Fatalf("JSON(%q): error %v, encoding/json valid %v", data, err, valid)
		} else if err != nil {
			var je *sdk.JSONError
			if !errors.As(err, &je) || je.Offset < 0 || je.Offset > len(data) {
				t.Fatalf("JSON(%q): error %#v", data, err)
			}
		}
		s := string(data)
		if want, _ := json.Marshal(s); !bytes.Equal(sdk.AppendString(nil, s), want) {
			t.Fatalf("AppendString(%q) = %s, want %s", s, sdk.AppendString(nil, s), want)
		}
		raw := sdk.NewArray().Raw(data)
		want, err := json.Marshal([]json.RawMessage{data})
		if err != nil {
			want = []byte("[null]")
		}
		if got := raw.Bytes(); !bytes.Equal(got, want) || (raw.Err() == nil) != valid {
			t.Fatalf("Raw(%q) = %s (%v), want %s", data, got, raw.Err(), want)
		}
		if !valid {
			return
		}
		d := json.NewDecoder(bytes.NewReader(data))
		d.UseNumber()
		var decoded any
		if err := d.Decode(&decoded); err != nil {
			t.Fatal(err)
		}
		compare(t, v, decoded, "$")
		if err := v.Err(); err != nil {
			t.Fatalf("reading %q recorded %v", data, err)
		}
		// Written back with Object and Array, it decodes to the same value.
		out := rewrite(v)
		d = json.NewDecoder(bytes.NewReader(out))
		d.UseNumber()
		var again any
		if err := d.Decode(&again); err != nil || !reflect.DeepEqual(again, decoded) {
			t.Fatalf("rewritten %q as %q: %v", data, out, err)
		}
	})
}

// compare checks v against what encoding/json decoded (with UseNumber).
func compare(t *testing.T, v sdk.Value, want any, path string) {
	t.Helper()
	switch w := want.(type) {
	case nil:
		if v.Kind() != sdk.KindNull {
			t.Fatalf("%s: kind %v, want null", path, v.Kind())
		}
	case bool:
		if v.Kind() != sdk.KindBool || v.AsBool() != w {
			t.Fatalf("%s: %s, want %v", path, v.Raw(), w)
		}
	case string:
		if v.Kind() != sdk.KindString || v.AsString() != w {
			t.Fatalf("%s: %q, want %q", path, v.AsString(), w)
		}
	case json.Number:
		if v.Kind() != sdk.KindNumber || string(v.Raw()) != w.String() {
			t.Fatalf("%s: %s, want %s", path, v.Raw(), w)
		}
		// Read alone, so a range error does not stick to the document.
		var wantInt int
		intErr := json.Unmarshal(v.Raw(), &wantInt)
		one := sdk.JSON(v.Raw())
		if got := one.AsInt(); got != wantInt || (one.Err() == nil) != (intErr == nil) {
			t.Fatalf("%s: AsInt %d (%v), encoding/json %d (%v)", path, got, one.Err(), wantInt, intErr)
		}
		var wantFloat float64
		floatErr := json.Unmarshal(v.Raw(), &wantFloat)
		one = sdk.JSON(v.Raw())
		if got := one.AsFloat(); got != wantFloat || (one.Err() == nil) != (floatErr == nil) {
			t.Fatalf("%s: AsFloat %v (%v), encoding/json %v (%v)", path, got, one.Err(), wantFloat, floatErr)
		}
	case []any:
		if v.Kind() != sdk.KindArray {
			t.Fatalf("%s: kind %v, want array", path, v.Kind())
		}
		n := 0
		for i, item := range v.Items() {
			if i != n || i >= len(w) {
				t.Fatalf("%s: item %d of %d", path, i, len(w))
			}
			compare(t, item, w[i], path+"[]")
			n++
		}
		if n != len(w) {
			t.Fatalf("%s: %d items, want %d", path, n, len(w))
		}
	case map[string]any:
		if v.Kind() != sdk.KindObject {
			t.Fatalf("%s: kind %v, want object", path, v.Kind())
		}
		seen := map[string]bool{}
		for name := range v.Fields() {
			if _, ok := w[name]; !ok {
				t.Fatalf("%s: field %q, which encoding/json does not have", path, name)
			}
			seen[name] = true
		}
		if len(seen) != len(w) {
			t.Fatalf("%s: %d distinct fields, want %d", path, len(seen), len(w))
		}
		for name, val := range w {
			if !v.Has(name) {
				t.Fatalf("%s: no field %q", path, name)
			}
			compare(t, v.Get(name), val, path+"."+name)
		}
	default:
		t.Fatalf("%s: unexpected %T", path, want)
	}
}

// rewrite writes v again with the writer.
func rewrite(v sdk.Value) []byte {
	switch v.Kind() {
	case sdk.KindObject:
		o := sdk.NewObject()
		for name, val := range v.Fields() {
			switch val.Kind() {
			case sdk.KindString:
				o.Str(name, val.AsString())
			case sdk.KindBool:
				o.Bool(name, val.AsBool())
			case sdk.KindNull:
				o.Null(name)
			case sdk.KindNumber:
				o.Raw(name, val.Raw())
			default:
				o.Raw(name, rewrite(val))
			}
		}
		return o.Bytes()
	case sdk.KindArray:
		a := sdk.NewArray()
		for _, val := range v.Items() {
			a.Raw(rewrite(val))
		}
		return a.Bytes()
	case sdk.KindString:
		return sdk.AppendString(nil, v.AsString())
	}
	return v.Raw()
}

// FuzzWriter checks Object's output byte for byte against encoding/json's
// for the same fields.
func FuzzWriter(f *testing.F) {
	f.Add("key", "value", int64(-3), 1.5, true, []byte(`{"a":[1]}`))
	f.Add("\xff<\u2028", "\x00\"\\", int64(math.MinInt64), 1e-7, false, []byte(" not json"))
	f.Add("", "", int64(0), math.Inf(1), false, []byte(nil))
	f.Fuzz(func(t *testing.T, name, s string, n int64, x float64, b bool, raw []byte) {
		o := sdk.NewObject().Str(name, s).Int("n", int(n)).Float("x", x).Bool("b", b).Raw("raw", raw).Strings("list", []string{s, name})
		got := o.Bytes()
		m := func(v any) string {
			out, err := json.Marshal(v)
			if err != nil {
				return "null"
			}
			return string(out)
		}
		want := "{" + m(name) + ":" + m(s) + `,"n":` + m(n) + `,"x":` + m(x) + `,"b":` + m(b) +
			`,"raw":` + m(json.RawMessage(raw)) + `,"list":` + m([]string{s, name}) + "}"
		if string(got) != want {
			t.Fatalf("got  %s\nwant %s", got, want)
		}
		_, floatErr := json.Marshal(x)
		if (o.Err() == nil) != (floatErr == nil && json.Valid(raw)) {
			t.Fatalf("Err %v, float error %v, raw valid %v", o.Err(), floatErr, json.Valid(raw))
		}
		if !json.Valid(got) {
			t.Fatalf("invalid output %s", got)
		}
	})
}
