package plugin

import (
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/porticohq/portico/hostapi"
)

// bundledDesc is the source description of a plugin from Deps.Bundled.
const bundledDesc = "bundled"

// bundled lists the plugins of Deps.Bundled by name: every top-level
// directory holding a manifest. A later tree wins over an earlier one.
func (m *Manager) bundled() map[string]source {
	out := map[string]source{}
	for _, fsys := range m.d.Bundled {
		for _, name := range BundledNames(fsys) {
			if sub, err := fs.Sub(fsys, name); err == nil {
				out[name] = source{fsys: sub, desc: bundledDesc}
			}
		}
	}
	return out
}

// BundledNames returns the plugins in a tree of plugin directories: the
// top-level directories with a valid plugin name that hold a manifest,
// sorted. A tree that cannot be read lists nothing.
func BundledNames(fsys fs.FS) []string {
	dirs, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil
	}
	var out []string
	for _, d := range dirs {
		if !d.IsDir() || !PluginName.MatchString(d.Name()) {
			continue
		}
		if _, err := fs.Stat(fsys, d.Name()+"/"+ManifestFile); err == nil {
			out = append(out, d.Name())
		}
	}
	return out
}

// checkExtensionGrants refuses grants of dotted capabilities (an embedding
// program's host functions) that this gateway does not provide.
func (m *Manager) checkExtensionGrants(grants []string) error {
	var have []string
	if m.d.Runtime != nil {
		have = m.d.Runtime.ExtensionCapabilities()
	}
	for _, g := range grants {
		if hostapi.ExtensionCapability.MatchString(g) && !slices.Contains(have, g) {
			known := "none"
			if len(have) > 0 {
				known = strings.Join(have, ", ")
			}
			return fmt.Errorf("capability %q is granted but this gateway provides no such host function (provided by the embedding program: %s)", g, known)
		}
	}
	return nil
}
