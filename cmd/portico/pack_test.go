package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/porticohq/portico/core/pack"
)

// TestPackCommands: build is deterministic; keygen, sign and verify work
// on archives and directories; a changed or wrongly signed pack fails
// verify.
func TestPackCommands(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join("..", "..", "testdata", "packs", "hello")
	at := func(name string) string { return filepath.Join(dir, name) }
	mustRun := func(args ...string) string {
		t.Helper()
		out, err := run(t, nil, args...)
		if err != nil {
			t.Fatalf("portico %s: %v", strings.Join(args, " "), err)
		}
		return out
	}
	mustRun("pack", "build", src, "-o", at("a.tar.gz"))
	mustRun("pack", "build", src, "-o", at("b.tar.gz"))
	a, _ := os.ReadFile(at("a.tar.gz"))
	b, _ := os.ReadFile(at("b.tar.gz"))
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Fatal("building twice gave different archives")
	}
	pub := strings.TrimSpace(mustRun("pack", "keygen", "-o", at("k.key")))
	mustRun("pack", "keygen", "-o", at("other.key"))
	if _, err := run(t, nil, "pack", "keygen", "-o", at("k.key")); err == nil {
		t.Error("keygen overwrote a key")
	}
	if st, err := os.Stat(at("k.key")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("private key file: %v %v", st, err)
	}
	if out := mustRun("pack", "inspect", at("a.tar.gz")); !strings.Contains(out, "signature: unsigned") ||
		!strings.Contains(out, "abi:       v1.0") || !strings.Contains(out, "hello-echo") {
		t.Errorf("inspect:\n%s", out)
	}
	mustRun("pack", "sign", at("a.tar.gz"), "--key", at("k.key"))

	tests := []struct {
		name string
		args []string
		want error // nil: verifies
	}{
		{"right key as text", []string{at("a.tar.gz"), "--pub", pub}, nil},
		{"right key as a file", []string{at("a.tar.gz"), "--pub", at("k.key.pub")}, nil},
		{"one of several keys", []string{at("a.tar.gz"), "--pub", at("other.key.pub"), "--pub", pub}, nil},
		{"wrong key", []string{at("a.tar.gz"), "--pub", at("other.key.pub")}, pack.ErrUntrusted},
		{"unsigned", []string{at("b.tar.gz"), "--pub", pub}, pack.ErrUnsigned},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := run(t, nil, append([]string{"pack", "verify"}, tt.args...)...)
			if !errors.Is(err, tt.want) {
				t.Errorf("verify: %v, want %v", err, tt.want)
			}
		})
	}

	// A signed directory builds into an archive that verifies the same.
	signedDir := at("hello")
	if err := os.CopyFS(signedDir, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	mustRun("pack", "sign", signedDir, "--key", at("k.key"))
	mustRun("pack", "build", signedDir, "-o", at("c.tar.gz"))
	mustRun("pack", "verify", at("c.tar.gz"), "--pub", pub)
	// Changing a file after signing breaks the signature.
	os.WriteFile(filepath.Join(signedDir, "greet", "greet.wasm"), []byte("\x00asm changed"), 0o600)
	if _, err := run(t, nil, "pack", "verify", signedDir, "--pub", pub); !errors.Is(err, pack.ErrSignature) {
		t.Errorf("verify a changed directory: %v", err)
	}
	if out := mustRun("pack", "inspect", signedDir, "--pub", pub); !strings.Contains(out, "signature: INVALID") {
		t.Errorf("inspect a changed directory:\n%s", out)
	}
}
