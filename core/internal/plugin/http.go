package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/porticohq/portico/core/internal/egress"
	"github.com/porticohq/portico/hostapi"
)

// httpPolicy is what one plugin may reach over HTTP.
type httpPolicy struct {
	allow   []string // host names; "*.example.com" allows subdomains
	private bool     // loopback, private and link-local addresses too
	maxBody int64
	client  *http.Client
}

func newHTTPPolicy(allow []string, private bool, timeout time.Duration, maxBody int64) *httpPolicy {
	p := &httpPolicy{allow: allow, private: private, maxBody: maxBody}
	dialer := &net.Dialer{Timeout: timeout, Control: p.checkAddress}
	p.client = &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext:           dialer.DialContext,
			Proxy:                 nil, // an environment proxy would bypass the address check
			TLSHandshakeTimeout:   timeout,
			ResponseHeaderTimeout: timeout,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       30 * time.Second,
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return errors.New("more than 3 redirects")
			}
			if !p.allowed(req.URL.Hostname()) {
				return fmt.Errorf("%w: redirect to %s, which is not on the allow-list", hostapi.ErrDenied, req.URL.Hostname())
			}
			return nil
		},
	}
	return p
}

// allowed checks a host name against the allow-list.
func (p *httpPolicy) allowed(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, a := range p.allow {
		a = strings.ToLower(a)
		if a == host || (strings.HasPrefix(a, "*.") && strings.HasSuffix(host, a[1:])) {
			return true
		}
	}
	return false
}

// checkAddress runs for every connection after DNS resolution, so a name
// that resolves to an internal address is refused however it is spelled.
func (p *httpPolicy) checkAddress(network, address string, _ syscall.RawConn) error {
	if p.private {
		return nil
	}
	if err := egress.CheckDial(address); err != nil {
		return fmt.Errorf("%w: %w", hostapi.ErrDenied, err)
	}
	return nil
}

// HTTP implements hostapi.Host: allow-list, address check (in the dialer),
// timeout and response limit.
func (h *pluginHost) HTTP(ctx context.Context, req *http.Request) (int, []byte, error) {
	p := h.http
	host := req.URL.Hostname()
	if p == nil || !p.allowed(host) {
		h.Denied(ctx, hostapi.CapHTTP+":"+host)
		return 0, nil, fmt.Errorf("%w: host %s is not on the http_allow list of plugin %q; add it to http_allow in its [[plugins]] table", hostapi.ErrDenied, host, h.name)
	}
	req.Header.Set("User-Agent", "portico-plugin/"+h.name)
	resp, err := p.client.Do(req)
	if err != nil {
		if ie := (*egress.InternalError)(nil); errors.As(err, &ie) {
			h.Denied(ctx, hostapi.CapHTTP+":"+host)
			return 0, nil, fmt.Errorf("%w: host %s is on the http_allow list, but its address %s is loopback, private or link-local, which plugins may not reach; set http_private = true in the [[plugins]] table of plugin %q to allow it", hostapi.ErrDenied, host, ie.Addr, h.name)
		}
		if errors.Is(err, hostapi.ErrDenied) {
			h.Denied(ctx, hostapi.CapHTTP+":"+host)
			return 0, nil, err
		}
		return 0, nil, fmt.Errorf("http %s %s: %w", req.Method, req.URL.Redacted(), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, p.maxBody+1))
	if err != nil {
		return 0, nil, fmt.Errorf("http %s %s: read body: %w", req.Method, req.URL.Redacted(), err)
	}
	if int64(len(body)) > p.maxBody {
		return 0, nil, fmt.Errorf("%w: response body over %d bytes (plugin.http_max_response_bytes)", hostapi.ErrQuota, p.maxBody)
	}
	return resp.StatusCode, body, nil
}
