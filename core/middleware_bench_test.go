package core_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/porticohq/portico/core"
)

// BenchmarkMiddlewareChain measures an authenticated GET /api/v1/skills
// through the whole handler with a 3-plugin chain (guard before
// authentication, headers and redact after it, the first-party Go
// middleware) beside the same request with no middleware, in one run: the
// difference is what the chain costs a request, allocations included.
func BenchmarkMiddlewareChain(b *testing.B) {
	for _, c := range []struct{ name, config string }{
		{"none", sessionsConfig},
		{"3-plugins", middlewareConfig},
	} {
		b.Run(c.name, func(b *testing.B) {
			dir := b.TempDir()
			file := filepath.Join(dir, "portico.toml")
			if err := os.WriteFile(file, []byte(c.config), 0o600); err != nil {
				b.Fatal(err)
			}
			key := core.NewKey()
			g, err := core.New(core.Options{ConfigFile: file, AdminKey: key, LogOutput: io.Discard,
				Environ:  []string{"PORTICO_PLUGIN__CACHE_DIR=" + sharedCache(b)},
				Settings: map[string]string{"data_dir": dir, "listen": "127.0.0.1:0", "log.level": "error"}})
			if err != nil {
				b.Fatal(err)
			}
			if err := g.Start(context.Background()); err != nil {
				b.Fatal(err)
			}
			defer g.Shutdown(context.Background())
			h := g.Handler()
			req := httptest.NewRequest("GET", "/api/v1/skills", nil)
			req.Header.Set("X-API-Key", key)
			req.RemoteAddr = "127.0.0.1:1234"
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Fatalf("GET /api/v1/skills: %d %s", w.Code, w.Body)
			}
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
			}
		})
	}
}
