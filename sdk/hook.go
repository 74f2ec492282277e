package sdk

// Event is one event a hook receives: its type ("message.received") and
// its data as JSON.
type Event struct {
	Type string
	Data []byte
}

var onEvent func(Event) error

// OnEvent registers the plugin's hook: fn receives every event its
// manifest subscribes to ([hooks] events = [...]), one at a time, in order.
// Call it from an init function.
func OnEvent(fn func(Event) error) { onEvent = fn }

func dispatchEvent(envelope []byte, fail func(string)) uint32 {
	in, err := parseEnvelope(envelope)
	if err != nil {
		fail(err.Error())
		return statusError
	}
	if onEvent == nil {
		fail("this module has no hook (sdk.OnEvent)")
		return statusError
	}
	if err := onEvent(Event{Type: in.Skill, Data: in.Payload}); err != nil {
		fail(err.Error())
		return statusError
	}
	return statusOK
}
