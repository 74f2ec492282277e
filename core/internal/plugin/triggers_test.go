package plugin

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func routedManager(t testing.TB, manifests ...string) *Manager {
	t.Helper()
	m := NewManager(Deps{})
	reg := m.reg.Load()
	for _, src := range manifests {
		man, err := ParseManifest([]byte(src))
		if err != nil {
			t.Fatal(err)
		}
		state := Active
		if strings.Contains(src, "# disabled") {
			state = Disabled
		}
		reg = reg.with(&entry{name: man.Name, manifest: man, state: state})
	}
	m.reg.Store(reg)
	return m
}

func skillManifest(plugin, skill string, triggers ...string) string {
	q := make([]string, len(triggers))
	for i, t := range triggers {
		q[i] = "'" + t + "'"
	}
	return "name = \"" + plugin + "\"\nversion = \"1.0.0\"\ndescription = \"d\"\nkinds = [\"skill\"]\n[[skills]]\nname = \"" + skill +
		"\"\ndescription = \"d\"\ntriggers = [" + strings.Join(q, ", ") + "]\n"
}

func TestRoute(t *testing.T) {
	m := routedManager(t,
		skillManifest("sum", "summarize", "/summarize", "tldr"),
		skillManifest("wx", "weather", "weather in", "re:(?i)^forecast\\b"),
		skillManifest("rem", "remind", "re:^remind me"),
		skillManifest("off", "sleepy", "/sleep")+"# disabled\n",
	)
	tests := []struct {
		text, skill, trigger, rest string
		ok                         bool
	}{
		{"/summarize the text", "summarize", "/summarize", "the text", true},
		{"/summarize", "summarize", "/summarize", "", true},
		{"  /summarize@portico_bot  long text ", "summarize", "/summarize", "long text", true},
		{"/summarizer x", "", "", "", false},
		{"tldr: this", "summarize", "tldr", "tldr: this", true},
		{"TLDR please", "summarize", "tldr", "TLDR please", true},
		{"mytldr", "", "", "", false},
		{"what is the Weather in Oslo", "weather", "weather in", "what is the Weather in Oslo", true},
		{"forecast for tomorrow", "weather", "re:(?i)^forecast\\b", "forecast for tomorrow", true},
		{"remind me at 5", "remind", "re:^remind me", "remind me at 5", true},
		{"/sleep now", "", "", "", false}, // its plugin is disabled
		{"hello there", "", "", "", false},
		{"", "", "", "", false},
	}
	for _, tt := range tests {
		r, ok := m.Route(tt.text)
		if ok != tt.ok || r.Skill != tt.skill || r.Trigger != tt.trigger || (ok && r.Text != tt.rest) {
			t.Errorf("Route(%q) = %+v, %v; want skill %q trigger %q text %q, %v", tt.text, r, ok, tt.skill, tt.trigger, tt.rest, tt.ok)
		}
	}
}

func TestBadTriggersRefused(t *testing.T) {
	for _, tr := range []string{"/", "/two words", "re:(", "   "} {
		_, err := ParseManifest([]byte(skillManifest("p", "s", tr)))
		if err == nil {
			t.Errorf("trigger %q accepted", tr)
		}
	}
}

func BenchmarkRoute(b *testing.B) {
	m := routedManager(b,
		skillManifest("sum", "summarize", "/summarize", "tldr"),
		skillManifest("wx", "weather", "weather in", "re:(?i)^forecast\\b"),
		skillManifest("echo", "echo", "/echo"),
	)
	b.ReportAllocs()
	for b.Loop() {
		m.Route("a plain message that matches no trigger at all, going to the default skill")
	}
}

func TestSkillsJSONFollowsTheRegistry(t *testing.T) {
	m := routedManager(t, skillManifest("sum", "summarize", "/summarize"), skillManifest("wx", "weather", "weather in"))
	check := func() {
		t.Helper()
		want, _ := json.Marshal(map[string]any{"skills": m.Skills(), "total": len(m.Skills())})
		var got, exp any
		json.Unmarshal(m.SkillsJSON(), &got)
		json.Unmarshal(want, &exp)
		if !reflect.DeepEqual(got, exp) {
			t.Errorf("SkillsJSON = %s\nwant %s", m.SkillsJSON(), want)
		}
	}
	check()
	first := m.SkillsJSON()
	if &first[0] != &m.SkillsJSON()[0] {
		t.Error("the answer is encoded again for the same registry")
	}
	// A new snapshot (a plugin disabled) answers its own list.
	reg := m.reg.Load()
	e := *reg.plugins["wx"]
	e.state = Disabled
	m.reg.Store(reg.with(&e))
	check()
	if !strings.Contains(string(m.SkillsJSON()), `"status":"disabled"`) {
		t.Errorf("the disabled state is missing: %s", m.SkillsJSON())
	}
}
