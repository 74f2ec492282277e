package plugin

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/porticohq/portico/hostapi"
)

// Info describes a plugin for the API.
type Info struct {
	Name         string         `json:"name"`
	Version      string         `json:"version"`
	Description  string         `json:"description"`
	Kinds        []string       `json:"kinds"`
	Status       State          `json:"status"`
	Source       string         `json:"source"`
	Skills       []string       `json:"skills"`
	Requested    Capabilities   `json:"capabilities_requested"`
	Granted      []string       `json:"capabilities_granted"`
	Stats        hostapi.Stats  `json:"stats"`
	Memory       hostapi.Memory `json:"memory"` // what it holds in memory now
	Hooks        *HookStats     `json:"hooks,omitempty"`
	DisabledBy   string         `json:"disabled_by,omitempty"` // "config" (enabled = false) or "api"
	LastError    string         `json:"last_error,omitempty"`
	LoadedAt     time.Time      `json:"loaded_at"`
	ModuleSHA256 string         `json:"module_sha256"`
	ModuleBytes  int            `json:"module_bytes"`
	Pack         *PackRef       `json:"pack,omitempty"` // the pack it came from
}

func (e *entry) info() Info {
	i := Info{Name: e.name, Status: e.state, Source: e.src.desc, LastError: e.lastErr, DisabledBy: e.disabledBy, LoadedAt: e.loadedAt.UTC(),
		ModuleSHA256: e.sha, ModuleBytes: e.size, Pack: e.src.pack, Granted: append([]string{}, e.granted...), Skills: []string{}, Kinds: []string{}}
	if m := e.manifest; m != nil {
		i.Version, i.Description, i.Kinds, i.Requested = m.Version, m.Description, m.Kinds, m.Capabilities
		for _, s := range m.Skills {
			i.Skills = append(i.Skills, s.Name)
		}
	}
	if e.plugin != nil {
		i.Stats = e.plugin.Stats()
	}
	if e.mw != nil {
		i.Stats = e.mw.Stats()
	}
	i.Memory = i.Stats.Memory
	if e.hook != nil {
		i.Hooks = e.hook.stats(e.manifest.Hooks.Events)
	}
	return i
}

// List returns every plugin, by name.
func (m *Manager) List() []Info {
	reg := m.reg.Load()
	out := make([]Info, 0, len(reg.plugins))
	for _, e := range reg.plugins {
		out = append(out, e.info())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Get returns one plugin.
func (m *Manager) Get(name string) (Info, error) {
	e, ok := m.reg.Load().plugins[name]
	if !ok {
		return Info{}, fmt.Errorf("%w: plugin %q", ErrNotFound, name)
	}
	return e.info(), nil
}

// CompiledBytes is the executable memory of every plugin's compiled code,
// a module shared by several plugins counted once.
func (m *Manager) CompiledBytes() int64 { return m.d.Runtime.CompiledBytes() }

// SkillInfo describes a skill for the API.
type SkillInfo struct {
	Skill
	Plugin string `json:"plugin"`
	Status State  `json:"status"`
}

// Skills returns every skill of every plugin that declares one, by name.
func (m *Manager) Skills() []SkillInfo { return m.skillsOf(m.reg.Load()) }

func (m *Manager) skillsOf(reg *registry) []SkillInfo {
	out := []SkillInfo{}
	for name, e := range reg.skills {
		for _, s := range e.manifest.Skills {
			if s.Name == name {
				out = append(out, SkillInfo{Skill: s, Plugin: e.name, Status: e.state})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// SkillsJSON is the answer of GET /api/v1/skills for a key without
// scopes, {"skills":[...],"total":N}, encoded once per registry snapshot:
// listing skills is a hot, read-only path and the schemas make it the
// largest answer the API gives often.
func (m *Manager) SkillsJSON() []byte {
	reg := m.reg.Load()
	reg.skillsOnce.Do(func() {
		list := m.skillsOf(reg)
		b, err := json.Marshal(struct {
			Skills []SkillInfo `json:"skills"`
			Total  int         `json:"total"`
		}{list, len(list)})
		if err == nil {
			reg.skillsJSON = append(b, '\n')
		}
	})
	return reg.skillsJSON
}
