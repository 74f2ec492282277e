// Package plugin manages the gateway's plugins: it reads their manifests,
// loads them through hostapi with the grants and limits the operator
// configured, keeps the active set as one immutable registry snapshot that
// reload, disable and enable swap atomically, and routes skill calls.
package plugin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/pelletier/go-toml/v2"

	"github.com/porticohq/portico/core/internal/config"
	"github.com/porticohq/portico/core/internal/events"
)

// ManifestFile is the manifest's name in a plugin's directory.
const ManifestFile = "plugin.toml"

// Manifest is a plugin's plugin.toml.
type Manifest struct {
	Name         string       `toml:"name" json:"name"`
	Version      string       `toml:"version" json:"version"`
	Description  string       `toml:"description" json:"description"`
	Module       string       `toml:"module" json:"module"` // file name of the module; default <name>.wasm
	Kinds        []string     `toml:"kinds" json:"kinds"`
	Skills       []Skill      `toml:"skills" json:"skills"`
	Hooks        Hooks        `toml:"hooks" json:"hooks"`
	Capabilities Capabilities `toml:"capabilities" json:"capabilities"`
}

// Hooks are a hook plugin's subscriptions: event patterns such as
// "message.*" (see the events package).
type Hooks struct {
	Events []string `toml:"events" json:"events"`
}

// Skill is one skill a plugin provides.
type Skill struct {
	Name        string          `toml:"name" json:"name"`
	Description string          `toml:"description" json:"description"`
	Triggers    []string        `toml:"triggers" json:"triggers"`
	InputSchema string          `toml:"input_schema" json:"-"` // JSON Schema, as JSON text
	Schema      json.RawMessage `toml:"-" json:"input_schema,omitempty"`

	resolved *jsonschema.Resolved // compiled InputSchema
	triggers []trigger            // compiled Triggers, same order
}

// CheckInput validates a skill's input (JSON text) against its schema; a
// skill without a schema takes any JSON.
func (s *Skill) CheckInput(input []byte) error {
	if s.resolved == nil {
		return nil
	}
	var v any
	if err := json.Unmarshal(input, &v); err != nil {
		return fmt.Errorf("input is not JSON: %v", err)
	}
	if err := s.resolved.Validate(v); err != nil {
		return fmt.Errorf("input does not match the schema of skill %q: %v", s.Name, err)
	}
	return nil
}

// Capabilities a plugin asks for: without a required one it does not
// activate; an optional one it can do without.
type Capabilities struct {
	Required []string `toml:"required" json:"required"`
	Optional []string `toml:"optional" json:"optional"`
}

// ErrManifest marks a manifest that does not parse or validate.
var ErrManifest = errors.New("invalid plugin manifest")

var (
	// SkillName is what skill names must match (what MCP clients accept).
	SkillName = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)
	// PluginName is what plugin names must match.
	PluginName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
	version    = regexp.MustCompile(`^v?\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$`)
)

// Kinds a manifest may declare; this host runs skills today.
var supportedKinds = []string{"skill", "hook", "channel", "middleware"}

// ParseManifest decodes and validates a plugin.toml strictly: unknown keys
// are errors, and every problem is named.
func ParseManifest(b []byte) (*Manifest, error) {
	var m Manifest
	dec := toml.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		var sm *toml.StrictMissingError
		if errors.As(err, &sm) {
			return nil, fmt.Errorf("%w: unknown keys: %s", ErrManifest, strings.ReplaceAll(strings.TrimSpace(sm.String()), "\n", " "))
		}
		return nil, fmt.Errorf("%w: %v", ErrManifest, err)
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

func (m *Manifest) validate() error {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if !PluginName.MatchString(m.Name) {
		bad("name %q must be 1 to 64 lower-case letters, digits, _ or -", m.Name)
	}
	if !version.MatchString(m.Version) {
		bad("version %q must be semantic, such as 1.2.0", m.Version)
	}
	if m.Module == "" {
		m.Module = m.Name + ".wasm"
	}
	m.Capabilities.Required = nonNil(m.Capabilities.Required)
	m.Capabilities.Optional = nonNil(m.Capabilities.Optional)
	if strings.ContainsAny(m.Module, `/\`) || strings.HasPrefix(m.Module, ".") || !strings.HasSuffix(m.Module, ".wasm") {
		bad("module %q must be a .wasm file name in the plugin's directory", m.Module)
	}
	if len(m.Kinds) == 0 {
		bad("kinds must list what the plugin provides, e.g. [\"skill\"]")
	}
	for _, k := range m.Kinds {
		if !slices.Contains(supportedKinds, k) {
			bad("kind %q is not supported by this host (supported: %s)", k, strings.Join(supportedKinds, ", "))
		}
	}
	if slices.Contains(m.Kinds, "middleware") && len(m.Kinds) > 1 {
		bad("a middleware plugin is only middleware (it speaks the http-wasm ABI): kinds = [\"middleware\"]")
	}
	if slices.Contains(m.Kinds, "skill") && len(m.Skills) == 0 {
		bad("a skill plugin must declare at least one [[skills]]")
	}
	if slices.Contains(m.Kinds, "hook") && len(m.Hooks.Events) == 0 {
		bad("a hook plugin must subscribe to events: [hooks] events = [\"message.*\"]")
	}
	for _, p := range m.Hooks.Events {
		if err := events.CheckPattern(p); err != nil {
			bad("hooks.events: %v", err)
		}
	}
	m.Hooks.Events = nonNil(m.Hooks.Events)
	seen := map[string]bool{}
	for i := range m.Skills {
		s := &m.Skills[i]
		if !SkillName.MatchString(s.Name) {
			bad("skills[%d].name %q must match %s", i, s.Name, SkillName)
		} else if seen[s.Name] {
			bad("skill %q is declared twice", s.Name)
		}
		seen[s.Name] = true
		s.Triggers = nonNil(s.Triggers)
		s.triggers = s.triggers[:0]
		for _, src := range s.Triggers {
			t, err := compileTrigger(src)
			if err != nil {
				bad("skill %q: %v", s.Name, err)
			}
			s.triggers = append(s.triggers, t)
		}
		if strings.TrimSpace(s.Description) == "" {
			bad("skill %q needs a description", s.Name)
		}
		if s.InputSchema != "" {
			var js jsonschema.Schema
			if err := json.Unmarshal([]byte(s.InputSchema), &js); err != nil {
				bad("skill %q: input_schema is not a JSON Schema object: %v", s.Name, err)
			} else if r, err := js.Resolve(nil); err != nil {
				bad("skill %q: input_schema: %v", s.Name, err)
			} else {
				s.Schema, s.resolved = json.RawMessage(s.InputSchema), r
			}
		}
	}
	for _, c := range append(slices.Clone(m.Capabilities.Required), m.Capabilities.Optional...) {
		if !config.KnownCapability(c) {
			bad("capability %q is unknown (known: %s, or an embedding program's dotted name such as \"acme.lookup\")", c, strings.Join(config.Capabilities, ", "))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w %q: %s", ErrManifest, m.Name, strings.Join(errs, "; "))
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
