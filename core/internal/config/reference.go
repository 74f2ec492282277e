package config

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Reference renders the table of every key (name, environment variable,
// type, default, reload mode, description) that docs/configuration.md
// carries; a test keeps the two in step.
func Reference() string {
	def := Default().Flat(true)
	var b strings.Builder
	b.WriteString("| key | environment | type | default | reload | description |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- |\n")
	for _, f := range fields {
		d, _ := json.Marshal(def[f.Key])
		reload := "live"
		if f.Restart {
			reload = "restart"
		}
		fmt.Fprintf(&b, "| `%s` | `%s` | %s | `%s` | %s | %s |\n", f.Key, f.Env, f.Kind, d, reload, strings.ReplaceAll(f.Doc, "|", "\\|"))
	}
	return b.String()
}
