package egress

import (
	"context"
	"errors"
	"net/netip"
	"testing"
)

func TestCheckDial(t *testing.T) {
	tests := []struct {
		addr     string
		internal bool
	}{
		{"93.184.216.34:443", false},
		{"[2606:2800:220:1:248:1893:25c8:1946]:443", false},
		{"127.0.0.1:80", true},
		{"10.1.2.3:80", true},
		{"172.16.0.1:80", true},
		{"192.168.1.1:80", true},
		{"[::1]:80", true},
		{"169.254.169.254:80", true},
		{"[fe80::1]:80", true},
		{"[fc00::1]:80", true},
		{"100.64.0.1:80", true},
		{"0.0.0.0:80", true},
		{"224.0.0.1:80", true},
		{"[::ffff:127.0.0.1]:80", true},
		{"[::ffff:93.184.216.34]:80", false},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			err := CheckDial(tt.addr)
			if got := errors.Is(err, ErrInternal); got != tt.internal {
				t.Errorf("CheckDial(%s) = %v, want internal=%v", tt.addr, err, tt.internal)
			}
			if !tt.internal && err != nil {
				t.Errorf("CheckDial(%s) = %v", tt.addr, err)
			}
		})
	}
	if err := CheckDial("nonsense"); err == nil || errors.Is(err, ErrInternal) {
		t.Errorf("malformed address: %v", err)
	}
}

func TestCheckHost(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		host     string
		internal bool
	}{
		{"93.184.216.34", false},
		{"127.0.0.1", true},
		{"::1", true},
		{"localhost", true}, // resolves to loopback on any machine
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			err := CheckHost(ctx, tt.host)
			if got := errors.Is(err, ErrInternal); got != tt.internal || (!tt.internal && err != nil) {
				t.Errorf("CheckHost(%s) = %v, want internal=%v", tt.host, err, tt.internal)
			}
		})
	}
	if err := CheckHost(ctx, "no-such-host.invalid"); err == nil || errors.Is(err, ErrInternal) {
		t.Errorf("unresolvable host: %v", err)
	}
}

func TestInternalUnmaps(t *testing.T) {
	if !Internal(netip.MustParseAddr("::ffff:10.0.0.1")) {
		t.Error("mapped private address is not internal")
	}
}
