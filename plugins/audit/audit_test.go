package main

import (
	"testing"

	"github.com/porticohq/portico/sdk"
)

func TestAuditKeepsEvents(t *testing.T) {
	sdk.UseFake(sdk.NewFake())
	for _, ev := range []sdk.Event{{Type: "message.received", Data: []byte(`{"text":"hi"}`)}, {Type: "plugin.loaded", Data: []byte(`"a string"`)}, {Type: "plugin.empty"}} {
		if err := sdk.Deliver(ev); err != nil {
			t.Fatal(err)
		}
	}
	out, err := sdk.Invoke("audit_log", nil)
	if err != nil || string(out) != (`{"events":[{"seq":2,"type":"plugin.empty","data":null},{"seq":1,"type":"plugin.loaded","data":"a string"},{"seq":0,"type":"message.received","data":{"text":"hi"}}]}`) {
		t.Errorf("audit_log: %s %v", out, err)
	}
	sdk.UseFake(&sdk.Fake{Grants: []string{}})
	if err := sdk.Deliver(sdk.Event{Type: "x", Data: []byte("1")}); err == nil {
		t.Error("a hook without kv succeeded")
	}
}
