package pack

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/ed25519"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/porticohq/portico/core/internal/config"
)

const manifest = "name = \"demo\"\nversion = \"1.0.0\"\ndescription = \"d\"\nabi = \"v1.0\"\n" +
	"[[plugins]]\nname = \"alpha\"\ngrants = [\"kv\"]\n[[plugins]]\nname = \"beta\"\n"

// demo is a valid pack directory; tests change copies of it.
func demo() fstest.MapFS {
	return fstest.MapFS{
		"pack.toml":         {Data: []byte(manifest)},
		"README.md":         {Data: []byte("a pack\n")},
		"alpha/plugin.toml": {Data: []byte("name = \"alpha\"\nversion = \"1.0.0\"\n")},
		"alpha/alpha.wasm":  {Data: []byte("\x00asm alpha")},
		"beta/plugin.toml":  {Data: []byte("name = \"beta\"\nmodule = \"b.wasm\"\n")},
		"beta/b.wasm":       {Data: []byte("\x00asm beta")},
	}
}

// archive writes entries as a .tar.gz in the given order.
func archive(t testing.TB, entries ...*tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, h := range entries {
		body := []byte(h.Linkname) // the body travels in Linkname for files
		if h.Typeflag == tar.TypeReg {
			h.Size, h.Linkname = int64(len(body)), ""
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write(body)
		}
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

func file(name, body string) *tar.Header {
	return &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Linkname: body}
}

// validEntries is demo() as tar entries.
func validEntries() []*tar.Header {
	var out []*tar.Header
	for name, f := range demo() {
		out = append(out, file(name, string(f.Data)))
	}
	return out
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		edit func(fstest.MapFS)
		want error
		msg  string
	}{
		{"valid", func(fstest.MapFS) {}, nil, ""},
		{"no manifest", func(m fstest.MapFS) { delete(m, "pack.toml") }, ErrInvalid, "no pack.toml"},
		{"unknown key", func(m fstest.MapFS) { m["pack.toml"] = &fstest.MapFile{Data: []byte(manifest + "colour = 1\n")} }, ErrInvalid, "unknown keys"},
		{"missing plugin", func(m fstest.MapFS) { delete(m, "beta/plugin.toml"); delete(m, "beta/b.wasm") }, ErrInvalid, `plugin "beta" is listed in pack.toml but beta/plugin.toml is missing`},
		{"missing module", func(m fstest.MapFS) { delete(m, "beta/b.wasm") }, ErrInvalid, "beta/b.wasm is missing"},
		{"manifest names another plugin", func(m fstest.MapFS) {
			m["beta/plugin.toml"] = &fstest.MapFile{Data: []byte("name = \"gamma\"\n")}
		}, ErrInvalid, `directory "beta" holds a plugin.toml naming the plugin "gamma"`},
		{"unlisted plugin", func(m fstest.MapFS) { m["gamma/plugin.toml"] = &fstest.MapFile{Data: []byte("name = \"gamma\"\n")} }, ErrInvalid, `"gamma" holds a plugin that pack.toml does not list`},
		{"plugin listed twice", func(m fstest.MapFS) {
			m["pack.toml"] = &fstest.MapFile{Data: []byte(manifest + "[[plugins]]\nname = \"beta\"\n")}
		}, ErrInvalid, `plugin "beta" is listed twice`},
		{"unknown grant", func(m fstest.MapFS) {
			m["pack.toml"] = &fstest.MapFile{Data: []byte(strings.Replace(manifest, `"kv"`, `"root"`, 1))}
		}, ErrInvalid, `grant "root" is not a capability`},
		{"bad abi", func(m fstest.MapFS) {
			m["pack.toml"] = &fstest.MapFile{Data: []byte(strings.Replace(manifest, `"v1.0"`, `"1"`, 1))}
		}, ErrInvalid, `abi "1"`},
		{"bad version", func(m fstest.MapFS) {
			m["pack.toml"] = &fstest.MapFile{Data: []byte(strings.Replace(manifest, `"1.0.0"`, `"latest"`, 1))}
		}, ErrInvalid, `version "latest"`},
		{"no plugins", func(m fstest.MapFS) {
			m["pack.toml"] = &fstest.MapFile{Data: []byte("name = \"demo\"\nversion = \"1.0.0\"\nabi = \"v1.0\"\n")}
		}, ErrInvalid, "at least one plugin"},
		{"bad signature file", func(m fstest.MapFS) { m["pack.sig"] = &fstest.MapFile{Data: []byte("{}")} }, ErrSignature, "needs key"},
		{"file too large", func(m fstest.MapFS) { m["alpha/alpha.wasm"] = &fstest.MapFile{Data: make([]byte, 201)} }, ErrTooLarge, "packs.max_entry_bytes"},
		{"too many entries", func(m fstest.MapFS) {
			for _, n := range []string{"a", "b", "c", "d", "e", "f", "g"} {
				m["docs/"+n] = &fstest.MapFile{}
			}
		}, ErrTooLarge, "packs.max_entries"},
	}
	lim := Limits{MaxEntries: 12, MaxEntryBytes: 200, MaxTotalBytes: 1000}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := demo()
			tt.edit(fsys)
			p, err := Parse(fsys, lim)
			if !errors.Is(err, tt.want) || (err != nil && !strings.Contains(err.Error(), tt.msg)) {
				t.Fatalf("Parse: %v, want %v with %q", err, tt.want, tt.msg)
			}
			if err != nil {
				return
			}
			if p.Manifest.Name != "demo" || len(p.Manifest.Plugins) != 2 || p.Manifest.Plugins[1].Grants == nil {
				t.Errorf("manifest = %+v", p.Manifest)
			}
			sub, err := p.PluginFS("beta")
			if err != nil {
				t.Fatal(err)
			}
			if b, err := fs.ReadFile(sub, "b.wasm"); err != nil || string(b) != "\x00asm beta" {
				t.Errorf("beta's module: %q %v", b, err)
			}
		})
	}
}

func TestRead(t *testing.T) {
	tests := []struct {
		name    string
		entries []*tar.Header
		want    error
		msg     string
	}{
		{"valid", validEntries(), nil, ""},
		{"directory entries are fine", append(validEntries(), &tar.Header{Name: "alpha/", Typeflag: tar.TypeDir, Mode: 0o755}), nil, ""},
		{"path traversal", append(validEntries(), file("../evil", "x")), ErrInvalid, `"../evil" is not a plain relative path`},
		{"traversal inside", append(validEntries(), file("alpha/../../evil", "x")), ErrInvalid, "not a plain relative path"},
		{"absolute path", append(validEntries(), file("/etc/passwd", "x")), ErrInvalid, "not a plain relative path"},
		{"dot slash", append(validEntries(), file("./x", "x")), ErrInvalid, "not a plain relative path"},
		{"backslash", append(validEntries(), file(`alpha\..\x`, "x")), ErrInvalid, "not a plain relative path"},
		{"symlink", append(validEntries(), &tar.Header{Name: "link", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}), ErrInvalid, "packs hold only files and directories"},
		{"hard link", append(validEntries(), &tar.Header{Name: "link", Typeflag: tar.TypeLink, Linkname: "pack.toml"}), ErrInvalid, "packs hold only files and directories"},
		{"duplicate", append(validEntries(), file("pack.toml", manifest)), ErrInvalid, `"pack.toml" appears twice`},
		{"file and directory", append(validEntries(), &tar.Header{Name: "README.md/", Typeflag: tar.TypeDir, Mode: 0o755}), ErrInvalid, `"README.md" appears twice`},
		{"file under a file", append(validEntries(), file("README.md/x", "x")), ErrInvalid, "is a file and a directory"},
		{"entry too large", append(validEntries(), file("big", strings.Repeat("x", 201))), ErrTooLarge, "big is 201 bytes"},
		{"total too large", append(validEntries(), file("a", strings.Repeat("x", 200)), file("b", strings.Repeat("x", 200))), ErrTooLarge, "packs.max_unpacked_bytes"},
		{"missing plugin", validEntries()[:0], ErrInvalid, "no pack.toml"},
	}
	lim := Limits{MaxEntries: 20, MaxEntryBytes: 200, MaxTotalBytes: 600}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Read(bytes.NewReader(archive(t, tt.entries...)), lim)
			if !errors.Is(err, tt.want) || (err != nil && !strings.Contains(err.Error(), tt.msg)) {
				t.Fatalf("Read: %v, want %v with %q", err, tt.want, tt.msg)
			}
		})
	}
	t.Run("not gzip", func(t *testing.T) {
		if _, err := Read(strings.NewReader("pack.toml"), lim); !errors.Is(err, ErrInvalid) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("truncated", func(t *testing.T) {
		b := archive(t, validEntries()...)
		if _, err := Read(bytes.NewReader(b[:len(b)/2]), lim); !errors.Is(err, ErrInvalid) {
			t.Errorf("err = %v", err)
		}
	})
}

// TestArchiveDeterministic: writing a pack twice gives the same bytes, and
// a directory and its archive have the same digest and files.
func TestArchiveDeterministic(t *testing.T) {
	p, err := Parse(demo(), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	var a, b bytes.Buffer
	if _, err := p.WriteTo(&a); err != nil {
		t.Fatal(err)
	}
	again, _ := Parse(demo(), Limits{})
	again.WriteTo(&b)
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("two builds of one pack differ")
	}
	q, err := Read(bytes.NewReader(a.Bytes()), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Digest() != q.Digest() || len(p.Files()) != len(q.Files()) {
		t.Errorf("the archive's digest or files differ from the directory's")
	}
	// Entries are sorted, with no times or owners.
	zr, _ := gzip.NewReader(bytes.NewReader(a.Bytes()))
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		if h.ModTime.Unix() != 0 || h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Mode != 0o644 {
			t.Errorf("%s: header %+v", h.Name, h)
		}
		names = append(names, h.Name)
	}
	if strings.Join(names, " ") != "README.md alpha/alpha.wasm alpha/plugin.toml beta/b.wasm beta/plugin.toml pack.toml" {
		t.Errorf("entries = %v", names)
	}
	// WriteDir and ParseDir give the pack back.
	dir := filepath.Join(t.TempDir(), "demo")
	p.Sign(mustKey(t))
	if err := p.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	r, err := ParseDir(dir, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Digest() != p.Digest() || r.Signature == nil || *r.Signature != *p.Signature {
		t.Errorf("WriteDir/ParseDir lost something")
	}
}

func TestParseDirRefusesSymlinks(t *testing.T) {
	dir := t.TempDir()
	p, _ := Parse(demo(), Limits{})
	if err := p.WriteDir(filepath.Join(dir, "demo")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "demo", "alpha", "link")); err != nil {
		t.Fatal(err) // symlinks always work where the tests run (Linux)
	}
	if _, err := ParseDir(filepath.Join(dir, "demo"), Limits{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("err = %v", err)
	}
}

func mustKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSignVerify(t *testing.T) {
	key, other := mustKey(t), mustKey(t)
	trusted := []ed25519.PublicKey{key.Public().(ed25519.PublicKey)}
	signedArchive := func(edit func(*Pack)) *Pack {
		p, err := Parse(demo(), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		p.Sign(key)
		if edit != nil {
			edit(p)
		}
		// Through an archive and back, as a client would send it.
		var buf bytes.Buffer
		p.WriteTo(&buf)
		q, err := Read(&buf, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		return q
	}
	tests := []struct {
		name string
		p    *Pack
		want error
	}{
		{"signed by a trusted key", signedArchive(nil), nil},
		{"unsigned", signedArchive(func(p *Pack) { p.Signature = nil }), ErrUnsigned},
		{"module changed after signing", signedArchive(func(p *Pack) { p.files["alpha/alpha.wasm"] = []byte("\x00asm evil") }), ErrSignature},
		{"file added after signing", signedArchive(func(p *Pack) { p.files["extra"] = []byte("x") }), ErrSignature},
		{"file renamed after signing", signedArchive(func(p *Pack) { p.files["README.txt"] = p.files["README.md"]; delete(p.files, "README.md") }), ErrSignature},
		{"digest forged to match", signedArchive(func(p *Pack) {
			p.files["README.md"] = []byte("changed")
			d := p.Digest()
			p.Signature.Digest = "sha256:" + hexOf(d[:])
		}), ErrSignature},
		{"key swapped", signedArchive(func(p *Pack) { p.Signature.Key = FormatPublicKey(other.Public().(ed25519.PublicKey)) }), ErrSignature},
		{"signed by another key", signedArchive(func(p *Pack) { p.Sign(other) }), ErrUntrusted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.p.Verify(trusted); !errors.Is(err, tt.want) {
				t.Errorf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

// TestCheck is the packs.signatures policy.
func TestCheck(t *testing.T) {
	key, other := mustKey(t), mustKey(t)
	pub := FormatPublicKey(key.Public().(ed25519.PublicKey))
	mk := func(signer ed25519.PrivateKey, tamper bool) *Pack {
		p, _ := Parse(demo(), Limits{})
		if signer != nil {
			p.Sign(signer)
		}
		if tamper {
			p.files["README.md"] = []byte("changed")
		}
		return p
	}
	tests := []struct {
		name    string
		mode    string
		keys    []string
		p       *Pack
		trusted bool
		want    error
	}{
		{"auto without keys accepts unsigned", "auto", nil, mk(nil, false), false, nil},
		{"auto without keys accepts any signer", "auto", nil, mk(other, false), false, nil},
		{"auto without keys refuses tampered", "auto", nil, mk(other, true), false, ErrSignature},
		{"auto with a key requires it: unsigned", "auto", []string{pub}, mk(nil, false), false, ErrUnsigned},
		{"auto with a key requires it: other key", "auto", []string{pub}, mk(other, false), false, ErrUntrusted},
		{"auto with a key: trusted", "auto", []string{pub}, mk(key, false), true, nil},
		{"required: tampered", "required", []string{pub}, mk(key, true), false, ErrSignature},
		{"optional accepts unsigned", "optional", []string{pub}, mk(nil, false), false, nil},
		{"optional accepts other key untrusted", "optional", []string{pub}, mk(other, false), false, nil},
		{"optional still trusts the key", "optional", []string{pub}, mk(key, false), true, nil},
		{"optional refuses tampered", "optional", []string{pub}, mk(key, true), false, ErrSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := config.Default().Packs
			c.Signatures, c.TrustedKeys = tt.mode, tt.keys
			if err := config.Default().Validate(); err != nil {
				t.Fatal(err)
			}
			trusted, err := Check(tt.p, c.TrustedKeys, c.SignaturesRequired())
			if trusted != tt.trusted || !errors.Is(err, tt.want) {
				t.Errorf("Check = %v, %v; want %v, %v", trusted, err, tt.trusted, tt.want)
			}
		})
	}
}

func TestKeys(t *testing.T) {
	pub, priv, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if k, err := ParsePublicKey(FormatPublicKey(pub)); err != nil || !k.Equal(pub) {
		t.Errorf("public key round trip: %v", err)
	}
	if k, err := ParsePrivateKey(FormatPrivateKey(priv) + "\n"); err != nil || !k.Equal(priv) {
		t.Errorf("private key round trip: %v", err)
	}
	for _, bad := range []string{"", "ed25519:", "ed25519:AAAA", "rsa:" + FormatPublicKey(pub)[8:], FormatPrivateKey(priv)} {
		if _, err := ParsePublicKey(bad); err == nil {
			t.Errorf("ParsePublicKey(%q) accepted", bad)
		}
	}
	if _, err := ParsePrivateKey(FormatPublicKey(pub)); err == nil {
		t.Error("a public key parsed as a private key")
	}
}

func TestCheckABI(t *testing.T) {
	tests := []struct {
		abi          string
		major, minor int
		ok           bool
	}{
		{"v1.0", 1, 2, true},
		{"v1.2", 1, 2, true},
		{"v1.3", 1, 2, false},
		{"v2.0", 1, 2, false},
	}
	for _, tt := range tests {
		fsys := demo()
		fsys["pack.toml"] = &fstest.MapFile{Data: []byte(strings.Replace(manifest, "v1.0", tt.abi, 1))}
		p, err := Parse(fsys, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.CheckABI(tt.major, tt.minor); (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrABI)) {
			t.Errorf("%s on v%d.%d: %v", tt.abi, tt.major, tt.minor, err)
		}
	}
}

// FuzzParse feeds archives to Read: it must never panic, and a pack it
// accepts must write and read back to the same digest.
func FuzzParse(f *testing.F) {
	f.Add(archive(f, validEntries()...))
	f.Add(archive(f, append(validEntries(), file("../x", "x"))...))
	f.Add(archive(f, file("pack.toml", manifest)))
	f.Add([]byte("\x1f\x8b"))
	f.Add([]byte{})
	p, _ := Parse(demo(), Limits{})
	p.Sign(mustKey(f))
	var buf bytes.Buffer
	p.WriteTo(&buf)
	f.Add(buf.Bytes())
	lim := Limits{MaxEntries: 64, MaxEntryBytes: 1 << 16, MaxTotalBytes: 1 << 18}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Read(bytes.NewReader(b), lim)
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrSignature) {
				t.Fatalf("error without a pack sentinel: %v", err)
			}
			return
		}
		var out bytes.Buffer
		if _, err := p.WriteTo(&out); err != nil {
			t.Fatal(err)
		}
		q, err := Read(&out, lim)
		if err != nil {
			t.Fatalf("a pack read back fails: %v", err)
		}
		if p.Digest() != q.Digest() {
			t.Fatal("digest changed through an archive")
		}
	})
}

// FuzzParseManifest: pack.toml parsing never panics and fails only with
// ErrInvalid.
func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(manifest))
	f.Add([]byte("name = 1"))
	f.Add([]byte("[[plugins]]\nname = \"a\"\ngrants = [\"kv\", \"kv\"]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := ParseManifest(b); err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("error without ErrInvalid: %v", err)
		}
	})
}
