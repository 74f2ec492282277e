package plugin

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"unicode"
)

// A skill's triggers route chat messages to it. Three forms:
//
//	"/summarize"        a command: the message starts with it (then a space or the end)
//	"re:^remind me"     a regular expression (Go syntax) matched against the message
//	"weather in"        a keyword phrase: found in the message as whole words, ignoring case
//
// Commands win over patterns, patterns over keywords; within a form, skills
// are tried in name order. Messages no trigger matches go to the default
// skill (sessions.default_skill).
type trigger struct {
	command string         // "/summarize"
	re      *regexp.Regexp // "re:..."
	keyword string         // lower-cased phrase
}

func compileTrigger(s string) (trigger, error) {
	switch {
	case strings.HasPrefix(s, "/"):
		if len(s) < 2 || strings.ContainsFunc(s, unicode.IsSpace) {
			return trigger{}, fmt.Errorf("command trigger %q must be a slash and a word without spaces", s)
		}
		return trigger{command: s}, nil
	case strings.HasPrefix(s, "re:"):
		re, err := regexp.Compile(s[3:])
		if err != nil {
			return trigger{}, fmt.Errorf("pattern trigger %q: %v", s, err)
		}
		return trigger{re: re}, nil
	}
	k := strings.ToLower(strings.TrimSpace(s))
	if k == "" {
		return trigger{}, fmt.Errorf("empty keyword trigger")
	}
	return trigger{keyword: k}, nil
}

// Route is where a message goes: the skill and the trigger that chose it.
type Route struct {
	Skill   string `json:"skill"`
	Plugin  string `json:"plugin"`
	Trigger string `json:"trigger"` // "" when the default skill answers
	Command string `json:"command,omitempty"`
	// Text is the message without its command ("/summarize x" gives "x").
	Text string `json:"text"`
}

// Route picks the skill for a chat message by the triggers of the active
// skills. It reports false when no trigger matches.
func (m *Manager) Route(text string) (Route, bool) {
	reg := m.reg.Load()
	routes := reg.routes()
	trimmed := strings.TrimSpace(text)
	if strings.HasPrefix(trimmed, "/") {
		word, rest, _ := strings.Cut(trimmed, " ")
		// Telegram sends "/cmd@botname" in groups.
		word, _, _ = strings.Cut(word, "@")
		for _, r := range routes {
			if r.t.command == word {
				return Route{Skill: r.skill, Plugin: r.plugin, Trigger: r.src, Command: word, Text: strings.TrimSpace(rest)}, true
			}
		}
	}
	for _, r := range routes {
		if r.t.re != nil && r.t.re.MatchString(text) {
			return Route{Skill: r.skill, Plugin: r.plugin, Trigger: r.src, Text: text}, true
		}
	}
	var lower string
	for _, r := range routes {
		if r.t.keyword == "" {
			continue
		}
		if lower == "" {
			lower = strings.ToLower(text)
		}
		if containsWords(lower, r.t.keyword) {
			return Route{Skill: r.skill, Plugin: r.plugin, Trigger: r.src, Text: text}, true
		}
	}
	return Route{}, false
}

// containsWords reports whether phrase occurs in s at word boundaries.
func containsWords(s, phrase string) bool {
	for i := 0; ; {
		j := strings.Index(s[i:], phrase)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(phrase)
		if (start == 0 || !isWordByte(s[start-1])) && (end == len(s) || !isWordByte(s[end])) {
			return true
		}
		i = start + 1
	}
}

func isWordByte(b byte) bool {
	return b == '_' || b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 0x80
}

type routeEntry struct {
	skill, plugin, src string
	t                  trigger
}

// routes lists the triggers of the registry's active skills in name order,
// built once per registry snapshot.
func (r *registry) routes() []routeEntry {
	r.routesOnce.Do(func() {
		names := make([]string, 0, len(r.skills))
		for name := range r.skills {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			e := r.skills[name]
			if !e.state.Serves() || e.manifest == nil {
				continue
			}
			for _, s := range e.manifest.Skills {
				if s.Name != name {
					continue
				}
				for i, src := range s.Triggers {
					r.routeList = append(r.routeList, routeEntry{skill: name, plugin: e.name, src: src, t: s.triggers[i]})
				}
			}
		}
	})
	return r.routeList
}
