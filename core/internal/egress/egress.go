// Package egress decides which addresses the gateway's own outbound HTTP
// may reach: plugin requests (the http capability) and outbound webhooks
// share it, so "no loopback, private or link-local targets" means the same
// thing everywhere.
//
// The check belongs in the dialer (net.Dialer.Control), which runs after DNS
// resolution for every connection, so a name that resolves to an internal
// address is refused however it is spelled and whenever it is re-resolved.
package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// ErrInternal reports an address outbound requests may not reach unless the
// operator allows private targets.
var ErrInternal = errors.New("internal address")

// InternalError is the refusal of one internal address; it matches
// ErrInternal with errors.Is.
type InternalError struct {
	Addr netip.Addr
	Host string // the name that resolved to Addr, when there was one
}

func (e *InternalError) Error() string {
	if e.Host != "" {
		return fmt.Sprintf("%v %s (%s resolves to it)", ErrInternal, e.Addr, e.Host)
	}
	return fmt.Sprintf("%v %s", ErrInternal, e.Addr)
}

// Is makes errors.Is(err, ErrInternal) hold.
func (e *InternalError) Is(target error) bool { return target == ErrInternal }

var internalPrefixes = []netip.Prefix{
	netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("0.0.0.0/8"),
}

// Internal reports whether ip is loopback, private, link-local, multicast,
// unspecified, shared (carrier-grade NAT) or reserved; IPv4-mapped IPv6
// addresses are judged as the IPv4 address they carry.
func Internal(ip netip.Addr) bool {
	ip = ip.Unmap()
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsMulticast() || ip.IsUnspecified() || ip.IsInterfaceLocalMulticast() {
		return true
	}
	for _, p := range internalPrefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// CheckDial checks the "ip:port" a dialer is about to connect to (as
// net.Dialer.Control sees it, after DNS) and returns an error wrapping
// ErrInternal when the address is internal.
func CheckDial(address string) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("unexpected address %q", address)
	}
	if Internal(ip) {
		return &InternalError{Addr: ip.Unmap()}
	}
	return nil
}

// CheckHost resolves host (a name or an IP literal) and returns an error
// wrapping ErrInternal when any of its addresses is internal, or the lookup
// error when it does not resolve. It is the early check made when a target
// is configured; the dialer check still runs at every connection, because a
// name may resolve differently later.
func CheckHost(ctx context.Context, host string) error {
	if ip, err := netip.ParseAddr(host); err == nil {
		if Internal(ip) {
			return &InternalError{Addr: ip.Unmap()}
		}
		return nil
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", host, err)
	}
	for _, ip := range ips {
		if Internal(ip) {
			return &InternalError{Addr: ip.Unmap(), Host: host}
		}
	}
	return nil
}
