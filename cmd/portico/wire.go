package main

import "time"

// The answers of the gateway's HTTP API the admin commands read, as
// docs/http-api.md documents them: the CLI's own wire types, so it depends
// on the API, not on the server's code.

// pluginAnswer is a plugin of GET /api/v1/plugins and of the plugin
// actions' answers.
type pluginAnswer struct {
	Name       string   `json:"name"`
	Version    string   `json:"version"`
	Kinds      []string `json:"kinds"`
	Status     string   `json:"status"`
	Source     string   `json:"source"`
	Skills     []string `json:"skills"`
	LastError  string   `json:"last_error"`
	DisabledBy string   `json:"disabled_by"`
	Stats      struct {
		Instances int64  `json:"instances"`
		Calls     uint64 `json:"calls"`
		Errors    uint64 `json:"errors"`
		P50Micros int64  `json:"p50_us"`
		P99Micros int64  `json:"p99_us"`
	} `json:"stats"`
	Memory struct {
		CompiledBytes     int64  `json:"compiled_bytes"`
		LinearMemoryBytes uint64 `json:"linear_memory_bytes"`
	} `json:"memory"`
}

// sessionAnswer is a session of GET /api/v1/sessions.
type sessionAnswer struct {
	ID           string `json:"id"`
	Channel      string `json:"channel"`
	UserID       string `json:"user_id"`
	Status       string `json:"status"`
	TurnCount    int64  `json:"turn_count"`
	MessageCount int64  `json:"message_count"`
	TokenUsage   struct {
		Input  int64 `json:"input"`
		Output int64 `json:"output"`
	} `json:"token_usage"`
	CreatedAt    time.Time `json:"created_at"`
	LastActivity time.Time `json:"last_activity"`
}

// messageAnswer is a message of GET /api/v1/sessions/{id}/messages.
type messageAnswer struct {
	Role      string    `json:"role"`
	Text      string    `json:"text"`
	Skill     string    `json:"skill"`
	CreatedAt time.Time `json:"created_at"`
}

// patchAnswer is the answer of PATCH /api/v1/config.
type patchAnswer struct {
	Updated        []string          `json:"updated"`
	ReloadRequired []string          `json:"reload_required"`
	Overridden     map[string]string `json:"overridden"`
	File           string            `json:"file"`
	Created        bool              `json:"created"`
	Generation     uint64            `json:"generation"`
}

// packAnswer is a pack of POST and GET /api/v1/packs.
type packAnswer struct {
	Name     string   `json:"name"`
	Version  string   `json:"version"`
	Plugins  []string `json:"plugins"`
	Trusted  bool     `json:"trusted"`
	Previous string   `json:"previous_version"`
}
