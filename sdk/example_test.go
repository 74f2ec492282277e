package sdk_test

import (
	"errors"
	"fmt"
	"strings"

	"github.com/porticohq/portico/sdk"
)

// A skill is a plain function registered from init. Invoke runs it on the
// host's fake backend, as the gateway would run it in WebAssembly.
func ExampleSkill() {
	sdk.Skill("shout", func(in sdk.Input) ([]byte, error) {
		return []byte(strings.ToUpper(string(in.Payload))), nil
	})
	out, err := sdk.Invoke("shout", []byte(`"hello"`))
	fmt.Println(string(out), err)
	// Output: "HELLO" <nil>
}

// BadInput makes the gateway answer 400 with the message.
func ExampleBadInput() {
	sdk.Skill("positive", func(in sdk.Input) ([]byte, error) {
		if strings.HasPrefix(string(in.Payload), "-") {
			return nil, sdk.BadInput("want a positive number, got %s", in.Payload)
		}
		return in.Payload, nil
	})
	_, err := sdk.Invoke("positive", []byte("-3"))
	fmt.Println(err)
	// Output: want a positive number, got -3
}

// The key-value store is the plugin's own; the fake refuses capabilities
// that are not granted, like the gateway.
func ExampleKVSet() {
	sdk.UseFake(sdk.NewFake())
	sdk.KVSet("note", []byte("buy milk"))
	v, _ := sdk.KVGet("note")
	fmt.Println(string(v))

	sdk.UseFake(&sdk.Fake{Grants: []string{}})
	err := sdk.KVSet("note", []byte("x"))
	fmt.Println(errors.Is(err, sdk.ErrDenied))
	// Output:
	// buy milk
	// true
}

// A hook receives the events its manifest subscribes to.
func ExampleOnEvent() {
	f := sdk.UseFake(sdk.NewFake())
	sdk.OnEvent(func(ev sdk.Event) error {
		return sdk.KVSet("last:"+ev.Type, ev.Data)
	})
	sdk.Deliver(sdk.Event{Type: "message.received", Data: []byte(`{"text":"hi"}`)})
	fmt.Println(f.Keys())
	// Output: [last:message.received]
}

// CallSkill reaches another skill through the gateway [skills].
func ExampleCallSkill() {
	f := sdk.UseFake(sdk.NewFake())
	f.Skills["upper"] = func(in []byte) ([]byte, error) { return []byte(strings.ToUpper(string(in))), nil }
	out, err := sdk.CallSkill("upper", []byte(`"abc"`))
	fmt.Println(string(out), err)
	// Output: "ABC" <nil>
}

// Errorf formats and wraps like fmt.Errorf without linking fmt into the
// module.
func ExampleErrorf() {
	err := sdk.Errorf("telegram %s: status %d: %w", "sendMessage", 429, sdk.ErrTooLarge)
	fmt.Println(err)
	fmt.Println(errors.Is(err, sdk.ErrTooLarge))
	// Output:
	// telegram sendMessage: status 429: over a quota or limit
	// true
}
