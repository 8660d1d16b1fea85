package jwtauth

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// A JWKS URL is chosen by a tenant-admin and fetched by the gateway when
// anyone presents a token naming the provider's issuer, without
// authentication. Unguarded, that would let a tenant-admin (or whoever
// controls the provider's DNS) make the gateway send requests to its own
// network: a metadata service, an admin port on loopback, a database. So
// JWKS fetches may only reach public unicast addresses, checked twice:
//
//   - when a provider is validated, on the URL (https only, and a literal
//     address or a name such as "localhost" that is not public is
//     refused), so that a mistake is reported to the one who made it; and
//   - when the fetch dials, on the address actually dialled after DNS
//     resolution (a net.Dialer Control hook), so that a name that resolves,
//     or is later rebound, to an internal address is refused too.
//
// Redirects are checked as URLs and then dialled through the same hook. No
// proxy is used: through one, the dialled address would be the proxy's.
// Loopback is allowed only with [Options.AllowLoopback], for tests and
// local development.

// blockedPrefixes are address ranges that are not public unicast, beyond
// those the netip.Addr predicates name (loopback, private, link-local,
// multicast, unspecified).
var blockedPrefixes = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8",          // "this network"
		"100.64.0.0/10",      // carrier-grade NAT (RFC 6598)
		"192.0.0.0/24",       // IETF protocol assignments
		"192.0.2.0/24",       // documentation (TEST-NET-1)
		"198.18.0.0/15",      // benchmarking
		"198.51.100.0/24",    // documentation (TEST-NET-2)
		"203.0.113.0/24",     // documentation (TEST-NET-3)
		"240.0.0.0/4",        // reserved, and the broadcast address
		"::/96",              // IPv4-compatible (deprecated)
		"64:ff9b::/96",       // NAT64: reaches IPv4 addresses behind a translator
		"64:ff9b:1::/48",     // local-use NAT64
		"100::/64",           // discard-only
		"2001::/32",          // Teredo: tunnels to IPv4
		"2001:db8::/32",      // documentation
		"2002::/16",          // 6to4: tunnels to IPv4
		"fec0::/10",          // site-local (deprecated)
		"::ffff:0:0:0/96",    // IPv4-translated
		"255.255.255.255/32", // broadcast
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

// addrProblem returns why a may not be fetched from, or "".
func addrProblem(a netip.Addr, allowLoopback bool) string {
	a = a.Unmap().WithZone("")
	switch {
	case !a.IsValid():
		return "is not an IP address"
	case a.IsLoopback():
		if allowLoopback {
			return ""
		}
		return "is a loopback address"
	case a.IsUnspecified():
		return "is an unspecified address"
	case a.IsPrivate():
		return "is a private address"
	case a.IsLinkLocalUnicast():
		return "is a link-local address"
	case a.IsMulticast(), a.IsLinkLocalMulticast(), a.IsInterfaceLocalMulticast():
		return "is a multicast address"
	}
	for _, p := range blockedPrefixes {
		if p.Contains(a) {
			return "is a reserved or non-public address"
		}
	}
	if !a.IsGlobalUnicast() {
		return "is not a public unicast address"
	}
	return ""
}

// hostProblem returns why a URL's host (as url.URL.Hostname gives it) may
// not be fetched from, as far as can be told without resolving it, or "".
// loopback reports whether it names loopback (and is allowed, with
// allowLoopback).
func hostProblem(host string, allowLoopback bool) (problem string, loopback bool) {
	if a, err := netip.ParseAddr(host); err == nil {
		if p := addrProblem(a, allowLoopback); p != "" {
			return "host " + p, false
		}
		return "", a.Unmap().IsLoopback()
	}
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		if allowLoopback {
			return "", true
		}
		return "host is a loopback name", false
	}
	// A numeric last label is no DNS name, but some resolvers read
	// "127.1" or "0x7f.1" or "2130706433" as an IPv4 address.
	labels := strings.Split(name, ".")
	last := labels[len(labels)-1]
	if last == "" || strings.HasPrefix(last, "0x") || strings.Trim(last, "0123456789") == "" {
		return "host is not a valid host name", false
	}
	return "", false
}

// errBlockedAddress is wrapped by a fetch refused at dial time.
var errBlockedAddress = errors.New("the JWKS host resolves to an address that may not be fetched from")

// dialControl refuses to connect to an address that is not public (or
// loopback, with allowLoopback). It runs after name resolution, on the
// address about to be dialled.
func dialControl(allowLoopback bool) func(network, address string, _ syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("%w: %s", errBlockedAddress, "unparsable address")
		}
		if p := addrProblem(ap.Addr(), allowLoopback); p != "" {
			return fmt.Errorf("%w: %s %s", errBlockedAddress, ap.Addr(), p)
		}
		return nil
	}
}

// maxJWKSHeaderBytes bounds a JWKS response's headers.
const maxJWKSHeaderBytes = 64 << 10

// guardedTransport returns a copy of base (nil means
// http.DefaultTransport; any other RoundTripper than an *http.Transport is
// replaced) that dials only through dialControl, uses no proxy, and bounds
// response headers. resolver, if set, resolves names.
func guardedTransport(base http.RoundTripper, allowLoopback bool, resolver *net.Resolver) *http.Transport {
	var t *http.Transport
	if bt, ok := base.(*http.Transport); ok && bt != nil {
		t = bt.Clone()
	} else {
		t = http.DefaultTransport.(*http.Transport).Clone()
	}
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Resolver: resolver, Control: dialControl(allowLoopback)}
	t.DialContext = d.DialContext
	t.DialTLSContext = nil
	t.Dial, t.DialTLS = nil, nil // deprecated, but they would bypass DialContext
	t.Proxy = nil
	t.MaxResponseHeaderBytes = maxJWKSHeaderBytes
	return t
}
