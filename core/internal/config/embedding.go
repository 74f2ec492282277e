package config

import (
	"slices"

	"github.com/porticohq/portico/hostapi"
)

// KnownCapability reports whether name may be granted: a built-in
// capability (Capabilities) or the dotted name of a host function an
// embedding program adds ("acme.lookup", hostapi.ExtensionCapability).
// Whether the running gateway provides a dotted one is checked when the
// plugin loads, since only the program knows its host functions.
func KnownCapability(name string) bool {
	return slices.Contains(Capabilities, name) || hostapi.ExtensionCapability.MatchString(name)
}

// readBase parses Sources.Base, a TOML document, like a file.
func readBase(b []byte) (map[string]any, error) {
	if len(b) == 0 {
		return map[string]any{}, nil
	}
	flat, err := parseFile("base.toml", b)
	if err != nil {
		return nil, relabel(err, FromFile, FromBase)
	}
	return flat, nil
}

// relabel renames the source of err's KeyErrors from one layer to another.
func relabel(err error, from, to string) error {
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case *KeyError:
			if e.Source == from {
				e.Source = to
			}
		case interface{ Unwrap() []error }:
			for _, x := range e.Unwrap() {
				walk(x)
			}
		}
	}
	walk(err)
	return err
}
