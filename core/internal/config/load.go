package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/maps"
	"github.com/knadh/koanf/parsers/toml/v2"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/v2"
)

// Sources names the layers a Config is built from. Later layers win:
// built-in defaults < File < Env < Flags.
type Sources struct {
	// File is the config file (TOML, or YAML by a .yaml/.yml extension). When
	// empty, PORTICO_CONFIG from Env names it; failing that, the optional
	// file <data_dir>/portico.toml is used if it exists (and is where PATCH
	// /api/v1/config writes).
	File string
	// Env holds "NAME=value" pairs, usually os.Environ(). Only PORTICO_*
	// names are read.
	Env []string
	// Flags maps dotted keys to the text given on the command line.
	Flags map[string]string
	// Base is a TOML document that sits between the built-in defaults and
	// the file: a program embedding Portico gives its own configuration
	// here. It is parsed and checked like a file, once; it is not watched.
	Base []byte
}

// NonConfigEnv lists PORTICO_* environment variables that are not config
// keys; they are accepted and left to whoever reads them. Any other PORTICO_*
// name that matches no key is an error, so a typo never goes unnoticed.
// Names starting with PORTICO_TEST_ belong to the test suite.
var NonConfigEnv = []string{"PORTICO_CONFIG", "PORTICO_ADMIN_KEY", "PORTICO_URL", "PORTICO_KEY"}

// Source names for where a key's value came from.
const (
	FromDefault = "default"
	FromBase    = "base"
	FromFile    = "file"
	FromEnv     = "env"
	FromFlag    = "flag"
	FromAPI     = "api"
)

// ErrInvalid marks configuration that failed to parse, decode or validate;
// the KeyErrors joined with it name each bad key.
var ErrInvalid = errors.New("invalid configuration")

// layers is the input of build: flat, coerced maps per source.
type layers struct {
	base, file, env, flags map[string]any
}

// Load builds and validates a Config from src. It is what `portico config
// validate` and `print` use; a running gateway uses a Manager.
func Load(src Sources) (*Config, error) {
	m, err := NewManager(src, nil)
	if err != nil {
		return nil, err
	}
	return m.Current().Config, nil
}

func readEnv(environ []string) (map[string]any, error) {
	out := map[string]any{}
	var errs []error
	for _, kv := range environ {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) {
			continue
		}
		if strings.HasPrefix(name, EnvPrefix+"TEST_") || slices.Contains(NonConfigEnv, name) {
			continue
		}
		key := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, EnvPrefix), "__", "."))
		f, ok := Lookup(key)
		if !ok {
			errs = append(errs, &KeyError{Key: key, Source: "env " + name, Msg: unknownKeyMsg(key) + "; nested keys use __ between levels, e.g. PORTICO_LOG__LEVEL"})
			continue
		}
		v, err := f.parse(val)
		if err != nil {
			errs = append(errs, &KeyError{Key: key, Source: "env " + name, Msg: err.Error()})
			continue
		}
		out[key] = v
	}
	return out, joinInvalid(errs)
}

func readFlags(flags map[string]string) (map[string]any, error) {
	out := map[string]any{}
	var errs []error
	for key, val := range flags {
		f, ok := Lookup(key)
		if !ok {
			errs = append(errs, &KeyError{Key: key, Source: FromFlag, Msg: unknownKeyMsg(key)})
			continue
		}
		v, err := f.parse(val)
		if err != nil {
			errs = append(errs, &KeyError{Key: key, Source: FromFlag, Msg: err.Error()})
			continue
		}
		out[key] = v
	}
	return out, joinInvalid(errs)
}

// parserFor picks the file format by extension.
func parserFor(path string) (koanf.Parser, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".toml":
		return toml.Parser(), nil
	case ".yaml", ".yml":
		return yaml.Parser(), nil
	}
	return nil, fmt.Errorf("config file %s: unknown format; name it *.toml, *.yaml or *.yml", path)
}

// parseFile decodes a config file's bytes into a flat, checked map.
func parseFile(path string, b []byte) (map[string]any, error) {
	p, err := parserFor(path)
	if err != nil {
		return nil, err
	}
	nested, err := p.Unmarshal(b)
	if err != nil {
		return nil, fmt.Errorf("%w: config file %s: %v", ErrInvalid, path, err)
	}
	maps.IntfaceKeysToStrings(nested)
	flat, _ := maps.Flatten(nested, nil, ".")
	return checkFlat(flat, FromFile)
}

// checkFlat checks every key of a flat map against Fields and coerces its
// value, collecting a KeyError per bad key.
func checkFlat(flat map[string]any, source string) (map[string]any, error) {
	out := make(map[string]any, len(flat))
	var errs []error
	for _, key := range sortedKeys(flat) {
		val := flat[key]
		f, ok := Lookup(key)
		if !ok {
			if m, isMap := val.(map[string]any); isMap && len(m) == 0 && isTable(key) {
				continue // an empty table such as [http.cors]
			}
			errs = append(errs, &KeyError{Key: key, Source: source, Msg: unknownKeyMsg(key)})
			continue
		}
		v, err := f.coerce(val)
		if err != nil {
			errs = append(errs, &KeyError{Key: key, Source: source, Msg: err.Error()})
			continue
		}
		out[key] = v
	}
	return out, joinInvalid(errs)
}

func isTable(key string) bool {
	for _, f := range fields {
		if strings.HasPrefix(f.Key, key+".") {
			return true
		}
	}
	return false
}

func unknownKeyMsg(key string) string {
	if isTable(key) {
		return "is a table of keys, not a value"
	}
	return "unknown config key (see docs/configuration.md for the list)"
}

// build merges defaults < base < file < env < flags, decodes the result strictly
// into a Config and validates it. sources tells where each key came from.
func build(l layers) (*Config, map[string]string, error) {
	merged := Default().Flat(false)
	sources := make(map[string]string, len(merged))
	for k := range merged {
		sources[k] = FromDefault
	}
	for _, layer := range []struct {
		name string
		m    map[string]any
	}{{FromBase, l.base}, {FromFile, l.file}, {FromEnv, l.env}, {FromFlag, l.flags}} {
		for k, v := range layer.m {
			if f, _ := Lookup(k); f.MergeByName {
				v = mergeTables(merged[k], v)
			}
			merged[k] = v
			sources[k] = layer.name
		}
	}
	k := koanf.New(".")
	if err := k.Load(confmap.Provider(merged, "."), nil); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	var c Config
	err := k.UnmarshalWithConf("", &c, koanf.UnmarshalConf{DecoderConfig: &mapstructure.DecoderConfig{
		DecodeHook:  mapstructure.TextUnmarshallerHookFunc(),
		ErrorUnused: true,
		TagName:     "koanf",
	}})
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := c.Validate(); err != nil {
		for _, key := range Keys(err) {
			markSource(err, key, sources[key])
		}
		return nil, nil, joinInvalid([]error{err})
	}
	return &c, sources, nil
}

// markSource records where a rejected value came from, so the message
// points the operator at the right layer.
func markSource(err error, key, source string) {
	if source == FromDefault || source == "" {
		return
	}
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case *KeyError:
			if e.Key == key && e.Source == "" {
				e.Source = source
				if f, ok := Lookup(key); ok && source == FromEnv {
					e.Source = "env " + f.Env
				}
			}
		case interface{ Unwrap() []error }:
			for _, x := range e.Unwrap() {
				walk(x)
			}
		}
	}
	walk(err)
}

func joinInvalid(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return errors.Join(append([]error{ErrInvalid}, errs...)...)
}

// Message formats a configuration error for people: its problems joined
// with "; ", without the ErrInvalid marker.
func Message(err error) string { return strings.Join(Problems(err), "; ") }

// Problems lists the problems a (joined) configuration error holds, one
// each, without the ErrInvalid marker.
func Problems(err error) []string {
	var lines []string
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		if err != ErrInvalid {
			lines = append(lines, err.Error())
		}
	}
	walk(err)
	if len(lines) == 0 {
		return []string{err.Error()}
	}
	return lines
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// changedKeys lists the keys whose values differ between a and b.
func changedKeys(a, b *Config) []string {
	fa, fb := a.Flat(false), b.Flat(false)
	var out []string
	for _, k := range sortedKeys(fa) {
		if !reflect.DeepEqual(fa[k], fb[k]) {
			out = append(out, k)
		}
	}
	return out
}

// fileExists reports whether path exists; other stat errors are returned.
func fileExists(path string) (bool, error) {
	_, err := os.Stat(path)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return false, err
}
