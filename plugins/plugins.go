// Package plugins carries Portico's first-party plugins, built, inside the
// binary: each folder holds a plugin's source and its module. The modules
// are checked byte for byte against a fresh build by this package's tests.
package plugins

import "embed"

// FS holds the built first-party plugins: <name>/plugin.toml and its module.
//
//go:embed echo/echo.wasm echo/plugin.toml notes/notes.wasm notes/plugin.toml audit/audit.wasm audit/plugin.toml summarize/summarize.wasm summarize/plugin.toml httpget/httpget.wasm httpget/plugin.toml reverse/reverse.wasm reverse/plugin.toml telegram/telegram.wasm telegram/plugin.toml jsonhook/jsonhook.wasm jsonhook/plugin.toml assistant/assistant.wasm assistant/plugin.toml headers/headers.wasm headers/plugin.toml guard/guard.wasm guard/plugin.toml redact/redact.wasm redact/plugin.toml
var FS embed.FS

// Names lists the first-party plugins in FS.
var Names = []string{"echo", "notes", "audit", "summarize", "httpget", "reverse", "telegram", "jsonhook", "assistant", "headers", "guard", "redact"}
