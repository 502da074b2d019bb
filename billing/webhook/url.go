package webhook

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"syscall"

	"billingd/billing"
)

// CheckURL checks an endpoint URL: absolute http or https, a host, no
// credentials, and (unless allowPrivate) a host that resolves only to
// public addresses. The addresses are checked again on every connection, so
// a name that later resolves to a private address is refused then too.
func CheckURL(ctx context.Context, raw string, allowPrivate bool) error {
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		return billing.Invalid("url", "url is required")
	case len(raw) > 2048:
		return billing.Invalid("url", "url must be at most 2048 characters")
	case err != nil:
		return billing.Invalid("url", "url is not a valid URL: %v", err)
	case u.Scheme != "http" && u.Scheme != "https":
		return billing.Invalid("url", "url must start with http:// or https://, got %q", raw)
	case u.Hostname() == "":
		return billing.Invalid("url", "url must name a host, got %q", raw)
	case u.User != nil:
		return billing.Invalid("url", "url must not contain credentials")
	case u.Fragment != "":
		return billing.Invalid("url", "url must not have a fragment")
	}
	if allowPrivate {
		return nil
	}
	host := u.Hostname()
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else if addrs, err = net.DefaultResolver.LookupNetIP(ctx, "ip", host); err != nil || len(addrs) == 0 {
		return billing.Invalid("url", "the host of url, %s, does not resolve: %v", host, err)
	}
	for _, a := range addrs {
		if private(a) {
			return billing.Invalid("url", "url resolves to %s, a loopback or private address; webhooks go to public addresses only (BILLING_WEBHOOK_ALLOW_PRIVATE=true allows others)", a)
		}
	}
	return nil
}

// cgnat is the shared address space of carrier-grade NAT (RFC 6598).
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// private reports whether a is not a public unicast address: loopback,
// private (RFC 1918, RFC 4193), link-local (cloud metadata services live
// there), carrier-grade NAT, unspecified or multicast.
func private(a netip.Addr) bool {
	a = a.Unmap()
	return !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() || cgnat.Contains(a) ||
		(a.Is4() && a.As4()[0] == 0)
}

// refusePrivate is a net.Dialer Control function that refuses connections to
// non-public addresses, whatever the name resolved to at check time.
func refusePrivate(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("webhook: unexpected address %q: %w", address, err)
	}
	if private(ap.Addr()) {
		return fmt.Errorf("webhook: refused to connect to %s, a loopback or private address", ap.Addr())
	}
	return nil
}
