package sdk_test

import (
	"fmt"

	"github.com/porticohq/portico/sdk"
)

// A skill reads its input's fields with JSON and checks once; Err says
// where the input went wrong.
func ExampleJSON() {
	sdk.Skill("greet", func(in sdk.Input) ([]byte, error) {
		q := sdk.JSON(in.Payload)
		name, times := q.String("name"), q.Int("times")
		if err := q.Err(); err != nil {
			return nil, sdk.BadInput("want {\"name\": \"...\", \"times\": N}: %v", err)
		}
		if times <= 0 {
			times = 1
		}
		return sdk.NewObject().Str("greeting", "hello "+name).Int("times", times).Bytes(), nil
	})
	out, err := sdk.Invoke("greet", []byte(`{"name": "Zoë", "times": 2}`))
	fmt.Println(string(out), err)
	_, err = sdk.Invoke("greet", []byte(`{"name": "Zoë", "times": "two"}`))
	fmt.Println(err)
	_, err = sdk.Invoke("greet", []byte(`{"name": "Zoë",}`))
	fmt.Println(err)
	// Output:
	// {"greeting":"hello Zoë","times":2} <nil>
	// want {"name": "...", "times": N}: json: field "times" at offset 26: expected a number, found a string
	// want {"name": "...", "times": N}: json: at offset 16: expected a field name (a string in ""), found '}'
}

// Get reaches into nested objects; missing fields and nulls read as zero
// values, without an error.
func ExampleValue_Get() {
	v := sdk.JSON([]byte(`{"user": {"name": "ada", "admin": true, "team": null}}`))
	user := v.Get("user")
	fmt.Println(user.String("name"), user.Bool("admin"), user.String("team") == "", user.Has("email"))
	fmt.Println(v.Get("nobody").String("name") == "", v.Err())
	// Output:
	// ada true true false
	// true <nil>
}

// Items iterates over an array, Fields over an object.
func ExampleValue_Items() {
	v := sdk.JSON([]byte(`{"tags": ["a", "b\u00e9"], "sizes": {"s": 1, "m": 2}}`))
	for i, tag := range v.Get("tags").Items() {
		fmt.Println(i, tag.AsString())
	}
	for name, size := range v.Get("sizes").Fields() {
		fmt.Println(name, size.AsInt())
	}
	// Output:
	// 0 a
	// 1 bé
	// s 1
	// m 2
}

// Raw passes JSON through without decoding it, such as another skill's
// reply or a value of the input.
func ExampleValue_Raw() {
	v := sdk.JSON([]byte(`{"id": 7, "data": {"any": ["shape"]}}`))
	out := sdk.NewObject().Int("id", v.Int("id")).Raw("data", v.Get("data").Raw())
	fmt.Println(string(out.Bytes()), v.Get("data").Kind())
	// Output: {"id":7,"data":{"any":["shape"]}} object
}

// Object writes fields in the order of the calls, escaping strings as
// encoding/json does.
func ExampleObject() {
	o := sdk.NewObject().
		Str("text", "say \"hi\"\n<b>").
		Int("count", 3).
		Float("ratio", 0.25).
		Bool("done", false).
		Null("next").
		Strings("tags", []string{"a", "b"}).
		Object("meta", sdk.NewObject().Str("by", "notes")).
		Array("sizes", sdk.NewArray().Int(1).Int(2))
	fmt.Println(string(o.Bytes()))
	// Output: {"text":"say \"hi\"\n\u003cb\u003e","count":3,"ratio":0.25,"done":false,"next":null,"tags":["a","b"],"meta":{"by":"notes"},"sizes":[1,2]}
}

// A value that cannot be written becomes null, so the output stays valid
// JSON, and Err reports it.
func ExampleObject_Err() {
	o := sdk.NewObject().Raw("data", []byte(`{"a":`))
	fmt.Println(string(o.Bytes()))
	fmt.Println(o.Err())
	// Output:
	// {"data":null}
	// json: field "data" at offset 5: expected a value, found end of input
}

// AppendString is the escaping Object and Array use, for building JSON
// text by hand.
func ExampleAppendString() {
	b := []byte(`{"line":`)
	b = sdk.AppendString(b, "tab\there & \x01 \xff")
	b = append(b, '}')
	fmt.Println(string(b))
	// Output: {"line":"tab\there \u0026 \u0001 \ufffd"}
}
