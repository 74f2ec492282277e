package ui

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, path string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest("GET", path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	if !Serve(w, r) {
		w.Code = http.StatusNotFound
	}
	return w
}

func TestServe(t *testing.T) {
	for _, tc := range []struct {
		path, status, ctype string
	}{
		{"/ui/", "200", "text/html"},
		{"/ui/index.html", "200", "text/html"},
		{"/ui/app.js", "200", "javascript"},
		{"/ui/api.js", "200", "javascript"},
		{"/ui/style.css", "200", "text/css"},
		{"/ui/nope.js", "404", ""},
		{"/ui/../go.mod", "404", ""},
		{"/elsewhere/index.html", "404", ""},
	} {
		t.Run(tc.path, func(t *testing.T) {
			w := get(t, tc.path)
			if got := http.StatusText(w.Code); tc.status == "200" && w.Code != 200 || tc.status == "404" && w.Code != 404 {
				t.Fatalf("status %d (%s), want %s", w.Code, got, tc.status)
			}
			if w.Code != 200 {
				if w.Body.Len() != 0 || w.Header().Get("Content-Type") != "" {
					t.Error("a miss wrote an answer; the API must write its own 404")
				}
				return
			}
			h := w.Header()
			if !strings.Contains(h.Get("Content-Type"), tc.ctype) {
				t.Errorf("Content-Type %q, want %s", h.Get("Content-Type"), tc.ctype)
			}
			if h.Get("Content-Security-Policy") != CSP || !strings.Contains(CSP, "default-src 'self'") {
				t.Errorf("CSP %q", h.Get("Content-Security-Policy"))
			}
			if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("ETag") == "" {
				t.Errorf("headers %v", h)
			}
			// A browser holding the same file revalidates to 304.
			if w2 := get(t, tc.path, "If-None-Match", h.Get("ETag")); w2.Code != http.StatusNotModified {
				t.Errorf("revalidation: %d, want 304", w2.Code)
			}
		})
	}
}

// TestFilesAreSelfContained keeps the console offline and within its CSP:
// every file it references is embedded, nothing is loaded from elsewhere,
// and no inline script or style needs 'unsafe-inline'.
func TestFilesAreSelfContained(t *testing.T) {
	ref := regexp.MustCompile(`(?:href|src)="([^"]+)"|from '([^']+)'|import\('([^']+)'\)`)
	for _, name := range Names() {
		body := string(files[name].body)
		for _, m := range ref.FindAllStringSubmatch(body, -1) {
			target := m[1] + m[2] + m[3]
			switch {
			case strings.HasPrefix(target, "#"), target == "data:,":
			case strings.Contains(target, "//") || strings.HasPrefix(target, "/"):
				t.Errorf("%s loads %q from outside the console", name, target)
			default:
				if _, ok := files[strings.TrimPrefix(target, "./")]; !ok {
					t.Errorf("%s references %q, which is not embedded", name, target)
				}
			}
		}
		if strings.HasSuffix(name, ".html") {
			if regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`).MatchString(body) || strings.Contains(body, "<style") ||
				regexp.MustCompile(`\son[a-z]+=|\sstyle=`).MatchString(body) {
				t.Errorf("%s has inline script or style, which the CSP refuses", name)
			}
		}
		if strings.Contains(body, "innerHTML") || strings.Contains(body, "document.cookie") || strings.Contains(body, "localStorage") {
			t.Errorf("%s uses innerHTML, cookies or localStorage; build nodes with el() and keep the key in sessionStorage", name)
		}
	}
	if len(Names()) < 4 {
		t.Errorf("embedded files: %v", Names())
	}
}
