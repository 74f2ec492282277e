package core

import (
	"encoding/json"

	"github.com/porticohq/portico/core/internal/plugin"
)

// ManifestFile is the name of a plugin's manifest in its directory.
const ManifestFile = plugin.ManifestFile

// Manifest is a plugin's plugin.toml as the gateway reads it
// (docs/plugins.md): what plugin new, test, build and inspect and the pack
// commands check before a module goes anywhere near a gateway.
type Manifest struct {
	Name        string          `json:"name"`
	Version     string          `json:"version"`
	Description string          `json:"description"`
	Module      string          `json:"module"` // the module's file name (default <name>.wasm)
	Kinds       []string        `json:"kinds"`
	Skills      []ManifestSkill `json:"skills"`
	Hooks       struct {
		Events []string `json:"events"`
	} `json:"hooks"`
	Capabilities struct {
		Required []string `json:"required"`
		Optional []string `json:"optional"`
	} `json:"capabilities"`
}

// ManifestSkill is one [[skills]] table of a manifest.
type ManifestSkill struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Triggers    []string        `json:"triggers"`
	InputSchema json.RawMessage `json:"input_schema,omitempty"`
}

// ParseManifest decodes and checks a plugin.toml as strictly as the
// gateway does: unknown keys are errors and every problem is named.
func ParseManifest(b []byte) (*Manifest, error) {
	m, err := plugin.ParseManifest(b)
	if err != nil {
		return nil, err
	}
	out := &Manifest{Name: m.Name, Version: m.Version, Description: m.Description, Module: m.Module, Kinds: m.Kinds, Skills: []ManifestSkill{}}
	out.Hooks.Events = m.Hooks.Events
	out.Capabilities.Required, out.Capabilities.Optional = m.Capabilities.Required, m.Capabilities.Optional
	for _, s := range m.Skills {
		out.Skills = append(out.Skills, ManifestSkill{Name: s.Name, Description: s.Description, Triggers: s.Triggers, InputSchema: s.Schema})
	}
	return out, nil
}

// ValidPluginName reports whether s may name a plugin: 1 to 64 lower-case
// letters, digits, _ or -, starting with a letter or digit.
func ValidPluginName(s string) bool { return plugin.PluginName.MatchString(s) }

// ValidSkillName reports whether s may name a skill (what MCP clients
// accept as a tool name).
func ValidSkillName(s string) bool { return plugin.SkillName.MatchString(s) }
