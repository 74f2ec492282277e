package config

import (
	"encoding/base64"
	"strings"
)

// Packs configures skill packs: bundles of plugins installed with
// POST /api/v1/packs or from Go (docs/packs.md).
type Packs struct {
	TrustedKeys    []string `koanf:"trusted_keys" doc:"Public keys a pack signature is checked against, \"ed25519:<base64>\" each (portico pack keygen prints one)."`
	Signatures     string   `koanf:"signatures" doc:"Whether packs must be signed: \"auto\" requires a valid signature by a trusted key as soon as trusted_keys lists one (and accepts unsigned packs while it is empty), \"required\" always, \"optional\" never; a signature that does not verify (a pack changed after signing) is refused in every mode."`
	GrantRequested bool     `koanf:"grant_requested" doc:"Grant a signed pack's plugins the capabilities its pack.toml requests, on top of their [[plugins]] tables; unsigned packs never get requested grants."`
	MaxUploadBytes int64    `koanf:"max_upload_bytes" doc:"Largest body (the .tar.gz) of POST /api/v1/packs, in bytes."`
	MaxEntryBytes  int64    `koanf:"max_entry_bytes" doc:"Largest single file in a pack, unpacked, in bytes."`
	MaxTotalBytes  int64    `koanf:"max_unpacked_bytes" doc:"Largest total of a pack's files, unpacked, in bytes (bounds a compression bomb)."`
	MaxEntries     int64    `koanf:"max_entries" doc:"Most files and directories a pack may hold."`
}

// Values of packs.signatures.
const (
	SignaturesAuto     = "auto"
	SignaturesRequired = "required"
	SignaturesOptional = "optional"
)

// SignaturesRequired reports whether a pack must carry a valid signature by
// one of the trusted keys: always under "required", never under
// "optional", and under "auto" (the default) once a trusted key is
// configured.
func (p Packs) SignaturesRequired() bool {
	switch p.Signatures {
	case SignaturesRequired:
		return true
	case SignaturesOptional:
		return false
	}
	return len(p.TrustedKeys) > 0
}

func defaultPacks() Packs {
	return Packs{TrustedKeys: []string{}, Signatures: SignaturesAuto, MaxUploadBytes: 64 << 20,
		MaxEntryBytes: 32 << 20, MaxTotalBytes: 128 << 20, MaxEntries: 1024}
}

func (c *Config) validatePacks(bad func(key, format string, args ...any)) {
	p := c.Packs
	switch p.Signatures {
	case SignaturesAuto, SignaturesOptional:
	case SignaturesRequired:
		if len(p.TrustedKeys) == 0 {
			bad("packs.signatures", "\"required\" needs at least one key in packs.trusted_keys, or every pack is refused")
		}
	default:
		bad("packs.signatures", "must be \"auto\", \"required\" or \"optional\" (got %q)", p.Signatures)
	}
	for _, k := range p.TrustedKeys {
		b64, ok := strings.CutPrefix(k, "ed25519:")
		if b, err := base64.StdEncoding.DecodeString(b64); !ok || err != nil || len(b) != 32 {
			bad("packs.trusted_keys", "%q is not \"ed25519:<base64 of 32 bytes>\"; portico pack keygen prints one", k)
		}
	}
	for k, v := range map[string]int64{"packs.max_upload_bytes": p.MaxUploadBytes, "packs.max_entry_bytes": p.MaxEntryBytes,
		"packs.max_unpacked_bytes": p.MaxTotalBytes, "packs.max_entries": p.MaxEntries} {
		if v < 1 {
			bad(k, "must be at least 1 (got %d)", v)
		}
	}
}
