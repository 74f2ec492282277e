// Package pack reads, writes, signs and verifies skill packs: versioned
// bundles of several plugins with a pack manifest (pack.toml), as a
// directory or as one deterministic .tar.gz.
//
// A pack's layout is the same in both forms:
//
//	pack.toml            name, version, description, abi, [[plugins]]
//	pack.sig             optional: the ed25519 signature (see Sign)
//	<plugin>/plugin.toml one directory per plugin listed in pack.toml,
//	<plugin>/<module>    named like the plugin, with its module
//
// Parse reads a directory (any fs.FS, such as an embed.FS), Read a .tar.gz;
// both check the pack strictly and give the same *Pack, whose Digest is the
// same too, so a directory and its archive verify alike. The plugin
// manager installs a *Pack (plugin.Manager.InstallPack); docs/packs.md is
// the guide.
package pack

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing/fstest"

	"github.com/pelletier/go-toml/v2"

	"github.com/porticohq/portico/core/internal/config"
)

// Names of the pack's own files at its root.
const (
	ManifestFile  = "pack.toml"
	SignatureFile = "pack.sig"
	// PluginManifestFile is each plugin directory's manifest.
	PluginManifestFile = "plugin.toml"
)

// Errors of reading and checking a pack, for errors.Is.
var (
	// ErrInvalid is a pack that is malformed: a bad manifest, a missing
	// plugin, a path that escapes the pack, a duplicate entry.
	ErrInvalid = errors.New("invalid pack")
	// ErrTooLarge is a pack past one of its Limits.
	ErrTooLarge = errors.New("pack too large")
	// ErrUnsigned is a pack without a signature where one is required.
	ErrUnsigned = errors.New("pack is not signed")
	// ErrSignature is a signature that does not verify: the pack changed
	// after signing, or the signature itself is malformed.
	ErrSignature = errors.New("pack signature is not valid")
	// ErrUntrusted is a valid signature by a key that is not trusted.
	ErrUntrusted = errors.New("pack is signed by a key that is not trusted")
	// ErrABI is a pack that needs a newer plugin ABI than the host's.
	ErrABI = errors.New("pack needs a newer Portico ABI")
)

// Manifest is a pack's pack.toml.
type Manifest struct {
	Name        string `toml:"name" json:"name"`
	Version     string `toml:"version" json:"version"`
	Description string `toml:"description" json:"description"`
	// ABI is the oldest Portico plugin ABI the pack's plugins run on,
	// "v1.N"; a host with an older minor refuses the pack.
	ABI     string   `toml:"abi" json:"abi"`
	Plugins []Plugin `toml:"plugins" json:"plugins"`
}

// Plugin is one [[plugins]] table of pack.toml: a plugin directory of the
// pack and the capabilities the pack asks the operator to grant it.
type Plugin struct {
	Name   string   `toml:"name" json:"name"`
	Grants []string `toml:"grants" json:"grants"`
}

// Limits bound what Parse and Read accept. A zero field takes its value
// from DefaultLimits.
type Limits struct {
	MaxEntries    int   // files and directories
	MaxEntryBytes int64 // one file, unpacked
	MaxTotalBytes int64 // every file, unpacked
}

// DefaultLimits are the limits of a zero Limits, the same as the defaults
// of the packs.max_* config keys.
var DefaultLimits = Limits{MaxEntries: 1024, MaxEntryBytes: 32 << 20, MaxTotalBytes: 128 << 20}

func (l Limits) orDefault() Limits {
	if l.MaxEntries <= 0 {
		l.MaxEntries = DefaultLimits.MaxEntries
	}
	if l.MaxEntryBytes <= 0 {
		l.MaxEntryBytes = DefaultLimits.MaxEntryBytes
	}
	if l.MaxTotalBytes <= 0 {
		l.MaxTotalBytes = DefaultLimits.MaxTotalBytes
	}
	return l
}

// Pack is a parsed and checked pack. It is not changed after parsing,
// except by Sign.
type Pack struct {
	Manifest Manifest
	// Signature is the pack's pack.sig; nil when it has none.
	Signature *Signature
	files     map[string][]byte // by slash path; pack.sig is not among them
}

// File is one file of a pack, for listings.
type File struct {
	Path   string `json:"path"`
	Size   int    `json:"size"`
	SHA256 string `json:"sha256"`
}

// Files lists the pack's files (pack.sig excepted), sorted by path.
func (p *Pack) Files() []File {
	out := make([]File, 0, len(p.files))
	for _, name := range p.paths() {
		sum := sha256.Sum256(p.files[name])
		out = append(out, File{Path: name, Size: len(p.files[name]), SHA256: fmt.Sprintf("%x", sum)})
	}
	return out
}

func (p *Pack) paths() []string {
	out := make([]string, 0, len(p.files))
	for name := range p.files {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// Size is the total size of the pack's files, unpacked.
func (p *Pack) Size() int64 {
	var n int64
	for _, b := range p.files {
		n += int64(len(b))
	}
	return n
}

// PluginFS returns the directory of one of the pack's plugins: its
// plugin.toml and module at the root.
func (p *Pack) PluginFS(name string) (fs.FS, error) {
	if !slices.ContainsFunc(p.Manifest.Plugins, func(pl Plugin) bool { return pl.Name == name }) {
		return nil, fmt.Errorf("%w: pack %q has no plugin %q", ErrInvalid, p.Manifest.Name, name)
	}
	m := fstest.MapFS{}
	for k, b := range p.files {
		if rest, ok := strings.CutPrefix(k, name+"/"); ok {
			m[rest] = &fstest.MapFile{Data: b, Mode: 0o444}
		}
	}
	return m, nil
}

// ABIVersion returns the major and minor of the pack's minimum ABI.
func (p *Pack) ABIVersion() (major, minor int) {
	m := abiPattern.FindStringSubmatch(p.Manifest.ABI)
	if m == nil {
		return 0, 0 // not reached: parsing checked it
	}
	major, _ = strconv.Atoi(m[1])
	minor, _ = strconv.Atoi(m[2])
	return major, minor
}

// CheckABI refuses a pack whose minimum ABI this host (major.minor) does
// not speak.
func (p *Pack) CheckABI(major, minor int) error {
	pm, pn := p.ABIVersion()
	if pm != major || pn > minor {
		return fmt.Errorf("%w: pack %q %s needs ABI %s; this host speaks v%d.%d: upgrade Portico",
			ErrABI, p.Manifest.Name, p.Manifest.Version, p.Manifest.ABI, major, minor)
	}
	return nil
}

var (
	namePattern    = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
	versionPattern = regexp.MustCompile(`^v?\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$`)
	abiPattern     = regexp.MustCompile(`^v(\d{1,4})\.(\d{1,4})$`)
)

// ParseManifest decodes and checks a pack.toml strictly: unknown keys are
// errors, and every problem is named.
func ParseManifest(b []byte) (*Manifest, error) {
	var m Manifest
	dec := toml.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		var sm *toml.StrictMissingError
		if errors.As(err, &sm) {
			return nil, fmt.Errorf("%w: %s: unknown keys: %s", ErrInvalid, ManifestFile, strings.ReplaceAll(strings.TrimSpace(sm.String()), "\n", " "))
		}
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalid, ManifestFile, err)
	}
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if !namePattern.MatchString(m.Name) {
		bad("name %q must be 1 to 64 lower-case letters, digits, _ or -", m.Name)
	}
	if !versionPattern.MatchString(m.Version) {
		bad("version %q must be semantic, such as 1.2.0", m.Version)
	}
	if !abiPattern.MatchString(m.ABI) {
		bad("abi %q must be the oldest Portico ABI the plugins run on, such as \"v1.0\"", m.ABI)
	}
	if len(m.Plugins) == 0 {
		bad("list at least one plugin: [[plugins]] name = \"...\"")
	}
	seen := map[string]bool{}
	for i := range m.Plugins {
		pl := &m.Plugins[i]
		if !namePattern.MatchString(pl.Name) {
			bad("plugins[%d].name %q must be a plugin name (lower-case letters, digits, _ or -)", i, pl.Name)
		} else if seen[pl.Name] {
			bad("plugin %q is listed twice", pl.Name)
		}
		seen[pl.Name] = true
		if pl.Grants == nil {
			pl.Grants = []string{}
		}
		granted := map[string]bool{}
		for _, g := range pl.Grants {
			if !config.KnownCapability(g) {
				bad("plugin %q: grant %q is not a capability (known: %s, or an embedding program's dotted name such as \"acme.lookup\")", pl.Name, g, strings.Join(config.Capabilities, ", "))
			} else if granted[g] {
				bad("plugin %q: grant %q is listed twice", pl.Name, g)
			}
			granted[g] = true
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %s: %s", ErrInvalid, ManifestFile, strings.Join(errs, "; "))
	}
	return &m, nil
}

// pluginHead is the part of a plugin.toml a pack checks; the plugin
// manager parses the whole manifest strictly when it loads the plugin.
type pluginHead struct {
	Name   string `toml:"name"`
	Module string `toml:"module"`
}

// assemble checks a pack's files and builds the Pack; files holds every
// file by slash path, pack.sig included.
func assemble(files map[string][]byte) (*Pack, error) {
	for name := range files {
		for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
			if _, ok := files[dir]; ok {
				return nil, fmt.Errorf("%w: %q is a file and a directory", ErrInvalid, dir)
			}
		}
	}
	mb, ok := files[ManifestFile]
	if !ok {
		return nil, fmt.Errorf("%w: no %s at the pack's root", ErrInvalid, ManifestFile)
	}
	man, err := ParseManifest(mb)
	if err != nil {
		return nil, err
	}
	p := &Pack{Manifest: *man, files: files}
	if sb, ok := files[SignatureFile]; ok {
		sig, err := parseSignature(sb)
		if err != nil {
			return nil, err
		}
		p.Signature = sig
		delete(files, SignatureFile)
	}
	listed := map[string]bool{}
	for _, pl := range man.Plugins {
		listed[pl.Name] = true
		b, ok := files[pl.Name+"/"+PluginManifestFile]
		if !ok {
			return nil, fmt.Errorf("%w: plugin %q is listed in %s but %s/%s is missing", ErrInvalid, pl.Name, ManifestFile, pl.Name, PluginManifestFile)
		}
		var h pluginHead
		if err := toml.Unmarshal(b, &h); err != nil {
			return nil, fmt.Errorf("%w: %s/%s: %v", ErrInvalid, pl.Name, PluginManifestFile, err)
		}
		if h.Name != pl.Name {
			return nil, fmt.Errorf("%w: directory %q holds a %s naming the plugin %q; the directory and the name must match", ErrInvalid, pl.Name, PluginManifestFile, h.Name)
		}
		if h.Module == "" {
			h.Module = h.Name + ".wasm"
		}
		if strings.Contains(h.Module, "/") {
			return nil, fmt.Errorf("%w: plugin %q: module %q must be a file name in the plugin's directory", ErrInvalid, pl.Name, h.Module)
		}
		if _, ok := files[pl.Name+"/"+h.Module]; !ok {
			return nil, fmt.Errorf("%w: plugin %q: its module %s/%s is missing", ErrInvalid, pl.Name, pl.Name, h.Module)
		}
	}
	for name := range files {
		if dir, rest, ok := strings.Cut(name, "/"); ok && rest == PluginManifestFile && !listed[dir] {
			return nil, fmt.Errorf("%w: directory %q holds a plugin that %s does not list; add it to [[plugins]] or remove it", ErrInvalid, dir, ManifestFile)
		}
	}
	return p, nil
}

// checkPath refuses entry names that could escape the pack or confuse a
// reader: absolute paths, "..", backslashes, control characters.
func checkPath(name string) error {
	if !fs.ValidPath(name) || name == "." || strings.ContainsAny(name, `\:`) || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fmt.Errorf("%w: entry %q is not a plain relative path inside the pack", ErrInvalid, name)
	}
	return nil
}

// budget counts entries and bytes against Limits while reading.
type budget struct {
	lim     Limits
	entries int
	total   int64
}

func (b *budget) entry(name string, size int64) error {
	b.entries++
	if b.entries > b.lim.MaxEntries {
		return fmt.Errorf("%w: more than %d entries (packs.max_entries)", ErrTooLarge, b.lim.MaxEntries)
	}
	if size > b.lim.MaxEntryBytes {
		return fmt.Errorf("%w: %s is %d bytes, over the limit of %d (packs.max_entry_bytes)", ErrTooLarge, name, size, b.lim.MaxEntryBytes)
	}
	b.total += size
	if b.total > b.lim.MaxTotalBytes {
		return fmt.Errorf("%w: more than %d bytes unpacked (packs.max_unpacked_bytes)", ErrTooLarge, b.lim.MaxTotalBytes)
	}
	return nil
}
