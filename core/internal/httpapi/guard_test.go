package httpapi

import (
	"net/http/httptest"
	"testing"
)

func TestClientIP(t *testing.T) {
	tests := []struct {
		name    string
		trusted []string
		remote  string
		xff     []string
		want    string
	}{
		{"no proxies: XFF ignored", nil, "198.51.100.1:555", []string{"203.0.113.9"}, "198.51.100.1"},
		{"untrusted peer: XFF ignored", []string{"10.0.0.0/8"}, "198.51.100.1:555", []string{"203.0.113.9"}, "198.51.100.1"},
		{"trusted peer", []string{"10.0.0.0/8"}, "10.1.2.3:555", []string{"203.0.113.9"}, "203.0.113.9"},
		{"spoofed left entries skipped", []string{"10.0.0.0/8"}, "10.1.2.3:555", []string{"6.6.6.6, 203.0.113.9"}, "203.0.113.9"},
		{"chain of trusted proxies", []string{"10.0.0.0/8"}, "10.1.2.3:555", []string{"203.0.113.9, 10.9.9.9"}, "203.0.113.9"},
		{"several headers", []string{"10.0.0.0/8"}, "10.1.2.3:555", []string{"203.0.113.9", "10.9.9.9"}, "203.0.113.9"},
		{"single trusted IP", []string{"10.1.2.3"}, "10.1.2.3:555", []string{"203.0.113.9"}, "203.0.113.9"},
		{"garbage in XFF", []string{"10.0.0.0/8"}, "10.1.2.3:555", []string{"not-an-ip"}, "10.1.2.3"},
		{"all trusted", []string{"10.0.0.0/8"}, "10.1.2.3:555", []string{"10.0.0.1"}, "10.1.2.3"},
		{"ipv6 peer", []string{"::1"}, "[::1]:555", []string{"2001:db8::1"}, "2001:db8::1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p proxies
			p.set(tt.trusted)
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := p.clientIP(r); got != tt.want {
				t.Errorf("clientIP = %q, want %q", got, tt.want)
			}
		})
	}
}
