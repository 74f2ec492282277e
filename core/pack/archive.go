package pack

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Parse reads a pack directory: fsys's root holds pack.toml. Symbolic
// links and other special files are refused, so are files past lim.
func Parse(fsys fs.FS, lim Limits) (*Pack, error) {
	b := budget{lim: lim.orDefault()}
	files := map[string][]byte{}
	err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		if name == "." {
			return nil
		}
		if err := checkPath(name); err != nil {
			return err
		}
		if d.IsDir() {
			return b.entry(name, 0)
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%w: %s is a %v; packs hold only files and directories", ErrInvalid, name, d.Type())
		}
		info, err := d.Info()
		if err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		if err := b.entry(name, info.Size()); err != nil {
			return err
		}
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		if int64(len(data)) != info.Size() {
			return fmt.Errorf("%w: %s changed while it was read", ErrInvalid, name)
		}
		files[name] = data
		return nil
	})
	if err != nil {
		return nil, err
	}
	return assemble(files)
}

// ParseDir is Parse of a directory on disk.
func ParseDir(dir string, lim Limits) (*Pack, error) {
	if st, err := os.Stat(dir); err != nil {
		return nil, err
	} else if !st.IsDir() {
		return nil, fmt.Errorf("%w: %s is not a directory", ErrInvalid, dir)
	}
	return Parse(os.DirFS(dir), lim)
}

// Read reads a pack archive (.tar.gz). Entries must be plain files or
// directories with relative paths inside the pack, each named once, within
// lim; anything else is refused with ErrInvalid or ErrTooLarge.
func Read(r io.Reader, lim Limits) (*Pack, error) {
	b := budget{lim: lim.orDefault()}
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("%w: not a .tar.gz: %v", ErrInvalid, err)
	}
	tr := tar.NewReader(zr)
	files := map[string][]byte{}
	dirs := map[string]bool{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: reading the archive: %v", ErrInvalid, err)
		}
		name := h.Name
		if h.Typeflag == tar.TypeDir && len(name) > 1 && name[len(name)-1] == '/' {
			name = name[:len(name)-1]
		}
		if err := checkPath(name); err != nil {
			return nil, err
		}
		if _, dup := files[name]; dup || dirs[name] {
			return nil, fmt.Errorf("%w: entry %q appears twice", ErrInvalid, name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := b.entry(name, 0); err != nil {
				return nil, err
			}
			dirs[name] = true
		case tar.TypeReg:
			if err := b.entry(name, h.Size); err != nil {
				return nil, err
			}
			data := make([]byte, h.Size)
			if _, err := io.ReadFull(tr, data); err != nil {
				return nil, fmt.Errorf("%w: reading %s: %v", ErrInvalid, name, err)
			}
			files[name] = data
		default:
			return nil, fmt.Errorf("%w: entry %q has tar type %q; packs hold only files and directories", ErrInvalid, name, h.Typeflag)
		}
	}
	for name := range files {
		if dirs[name] {
			return nil, fmt.Errorf("%w: %q is a file and a directory", ErrInvalid, name)
		}
	}
	return assemble(files)
}

// ReadFile reads a pack from a path: a directory (Parse) or a .tar.gz
// (Read).
func ReadFile(name string, lim Limits) (*Pack, error) {
	st, err := os.Stat(name)
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return Parse(os.DirFS(name), lim)
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Read(f, lim)
}

// WriteTo writes the pack as a .tar.gz. The bytes depend only on the
// pack's files and signature: entries are sorted by path and carry no
// times, owners or directory entries, so building twice gives the same
// archive.
func (p *Pack) WriteTo(w io.Writer) (int64, error) {
	cw := &countWriter{w: w}
	zw, err := gzip.NewWriterLevel(cw, gzip.BestCompression)
	if err != nil {
		return 0, err
	}
	tw := tar.NewWriter(zw)
	files := p.filesWithSignature()
	for _, name := range sortedKeys(files) {
		h := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(files[name])), Typeflag: tar.TypeReg,
			ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
		if err := tw.WriteHeader(h); err != nil {
			return cw.n, err
		}
		if _, err := tw.Write(files[name]); err != nil {
			return cw.n, err
		}
	}
	if err := tw.Close(); err != nil {
		return cw.n, err
	}
	err = zw.Close()
	return cw.n, err
}

// WriteDir writes the pack's files, pack.sig included when signed, into
// dir, which must not exist yet.
func (p *Pack) WriteDir(dir string) error {
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	files := p.filesWithSignature()
	for _, name := range sortedKeys(files) {
		full := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(full), 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(full, files[name], 0o600); err != nil {
			return err
		}
	}
	return nil
}

func (p *Pack) filesWithSignature() map[string][]byte {
	out := make(map[string][]byte, len(p.files)+1)
	for k, v := range p.files {
		out[k] = v
	}
	if p.Signature != nil {
		out[SignatureFile] = p.Signature.encode()
	}
	return out
}

func sortedKeys(m map[string][]byte) []string {
	p := Pack{files: m}
	return p.paths()
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}
