package jwtauth_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/groupgate/groupgate/internal/fakedns"
	"github.com/groupgate/groupgate/jwtauth"
)

// TestJWKSURLHosts checks which JWKS URLs a provider may register: https to
// a public host only, and, with AllowLoopback, loopback too (over http as
// well). Every non-public range is refused, in IPv4, IPv6 and IPv4-mapped
// IPv6 spelling.
func TestJWKSURLHosts(t *testing.T) {
	strict := jwtauth.NewVerifier(jwtauth.Options{})
	loose := jwtauth.NewVerifier(jwtauth.Options{AllowLoopback: true})
	tests := []struct {
		url           string
		strict, loose string // "" to accept, else a part of the problem
	}{
		{"https://idp.example.com/keys", "", ""},
		{"https://8.8.8.8/keys", "", ""},
		{"https://[2001:4860:4860::8888]/keys", "", ""},
		{"https://login.microsoftonline.com./common/discovery/v2.0/keys", "", ""},

		{"https://127.0.0.1/keys", "loopback address", ""},
		{"https://127.9.9.9:8443/keys", "loopback address", ""},
		{"http://127.0.0.1:1234/keys", "loopback address", ""},
		{"https://[::1]/keys", "loopback address", ""},
		{"http://[::1]:1234/keys", "loopback address", ""},
		{"https://[::ffff:127.0.0.1]/keys", "loopback address", ""},
		{"https://localhost/keys", "loopback name", ""},
		{"http://localhost:8080/keys", "loopback name", ""},
		{"https://LocalHost./keys", "loopback name", ""},
		{"https://idp.localhost/keys", "loopback name", ""},

		{"https://0.0.0.0/keys", "unspecified", "unspecified"},
		{"https://0.1.2.3/keys", "reserved", "reserved"},
		{"https://[::]/keys", "unspecified", "unspecified"},
		{"https://10.1.2.3/keys", "private", "private"},
		{"https://172.16.0.1/keys", "private", "private"},
		{"https://172.31.255.255/keys", "private", "private"},
		{"https://192.168.1.1/keys", "private", "private"},
		{"https://[::ffff:10.0.0.1]/keys", "private", "private"},
		{"https://[::ffff:a00:1]/keys", "private", "private"},
		{"https://[fc00::1]/keys", "private", "private"},
		{"https://[fd12:3456::1]/keys", "private", "private"},
		{"https://169.254.169.254/latest/meta-data/", "link-local", "link-local"},
		{"https://[::ffff:169.254.169.254]/", "link-local", "link-local"},
		{"https://[fe80::1%25eth0]/keys", "link-local", "link-local"},
		{"https://100.64.0.1/keys", "reserved", "reserved"},
		{"https://100.127.255.254/keys", "reserved", "reserved"},
		{"https://224.0.0.1/keys", "multicast", "multicast"},
		{"https://[ff02::1]/keys", "multicast", "multicast"},
		{"https://255.255.255.255/keys", "reserved", "reserved"},
		{"https://240.0.0.1/keys", "reserved", "reserved"},
		{"https://198.18.0.1/keys", "reserved", "reserved"},
		{"https://192.0.2.1/keys", "reserved", "reserved"},
		{"https://[64:ff9b::a00:1]/keys", "reserved", "reserved"},
		{"https://[2002:a00:1::1]/keys", "reserved", "reserved"},
		{"https://[2001:db8::1]/keys", "reserved", "reserved"},
		{"https://[::127.0.0.1]/keys", "reserved", "reserved"},

		{"https://127.1/keys", "not a valid host name", "not a valid host name"},
		{"https://2130706433/keys", "not a valid host name", "not a valid host name"},
		{"https://0x7f000001/keys", "not a valid host name", "not a valid host name"},
		{"https://0x7f.0x0.0x0.0x1/keys", "not a valid host name", "not a valid host name"},

		{"http://idp.example.com/keys", "must use https", "must use https"},
		{"http://10.0.0.1/keys", "private", "private"},
		{"http://127.0.0.1.example.com/keys", "must use https", "must use https"},
	}
	for _, tt := range tests {
		p := jwksProvider(tt.url)
		for _, c := range []struct {
			name string
			err  error
			want string
		}{{"strict", strict.Validate(p), tt.strict}, {"loopback allowed", loose.Validate(p), tt.loose}} {
			switch {
			case c.want == "" && c.err != nil:
				t.Errorf("%s (%s): %v", tt.url, c.name, c.err)
			case c.want != "" && (c.err == nil || !strings.Contains(c.err.Error(), c.want) || !errors.Is(c.err, jwtauth.ErrInvalidProvider)):
				t.Errorf("%s (%s): %v, want a problem with %q", tt.url, c.name, c.err, c.want)
			}
		}
		if err := p.Validate(); (err == nil) != (tt.strict == "") {
			t.Errorf("%s: Provider.Validate %v, unlike a strict verifier", tt.url, err)
		}
	}
}

// jwksTLSServer serves keys over https on loopback, trusted by its
// client, and counts requests.
func jwksTLSServer(t *testing.T) (*httptest.Server, *jwksServer) {
	t.Helper()
	doc := newJWKSServer(t, jwkOf(t, "key1", rsaKey1().Public()))
	srv := httptest.NewTLSServer(doc.Config.Handler)
	t.Cleanup(srv.Close)
	return srv, doc
}

// TestJWKSDialChecksResolvedAddress checks the address actually dialled: a
// name that registration accepts but that resolves to loopback or to a
// private address is refused when the fetch dials, before any connection.
// The same fetch succeeds when loopback is allowed, so the refusal is the
// policy's, not the resolver's.
func TestJWKSDialChecksResolvedAddress(t *testing.T) {
	srv, doc := jwksTLSServer(t)
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	resolver := fakedns.Resolver(map[string][]netip.Addr{
		"example.com":          {netip.MustParseAddr("127.0.0.1")}, // the test certificate's name
		"internal.example.com": {netip.MustParseAddr("10.255.255.1")},
	})
	keysURL := func(host string) string { return "https://" + net.JoinHostPort(host, strconv.Itoa(port)) + "/keys" }
	tok := sign(t, jwt.SigningMethodRS256, rsaKey1(), "key1", claims(nil))
	verifier := func(allowLoopback bool) *jwtauth.Verifier {
		return jwtauth.NewVerifier(jwtauth.Options{Now: newClock().Now, HTTPClient: srv.Client(), Resolver: resolver,
			AllowLoopback: allowLoopback, FetchTimeout: 5 * time.Second})
	}

	for _, host := range []string{"example.com", "internal.example.com"} {
		p := jwksProvider(keysURL(host))
		if err := p.Validate(); err != nil {
			t.Fatalf("%s: registration refused a public-looking name: %v", host, err)
		}
		_, err := verifier(false).Verify(context.Background(), p, tok)
		checkRejected(t, err, tok, "may not be fetched from")
		if !errors.Is(err, jwtauth.ErrKeysUnavailable) {
			t.Errorf("%s: %v, want ErrKeysUnavailable", host, err)
		}
	}
	if doc.Hits() != 0 {
		t.Fatalf("the JWKS server was reached %d times", doc.Hits())
	}
	mustVerify(t, verifier(true), jwksProvider(keysURL("example.com")), tok)
	if doc.Hits() != 1 {
		t.Fatalf("hits = %d after the allowed fetch, want 1", doc.Hits())
	}
	// A private address stays refused with loopback allowed.
	_, err := verifier(true).Verify(context.Background(), jwksProvider(keysURL("internal.example.com")), tok)
	checkRejected(t, err, tok, "private address")
}

// TestJWKSRedirectDialChecked: a redirect to a public-looking name that
// resolves to an internal address is refused at dial time.
func TestJWKSRedirectDialChecked(t *testing.T) {
	redirector := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://internal.example.com/keys", http.StatusFound)
	}))
	t.Cleanup(redirector.Close)
	port := redirector.Listener.Addr().(*net.TCPAddr).Port
	resolver := fakedns.Resolver(map[string][]netip.Addr{
		"example.com":          {netip.MustParseAddr("127.0.0.1")},
		"internal.example.com": {netip.MustParseAddr("192.168.0.10")},
	})
	v := jwtauth.NewVerifier(jwtauth.Options{Now: newClock().Now, HTTPClient: redirector.Client(), Resolver: resolver, AllowLoopback: true})
	tok := sign(t, jwt.SigningMethodRS256, rsaKey1(), "key1", claims(nil))
	_, err := v.Verify(context.Background(), jwksProvider("https://example.com:"+strconv.Itoa(port)+"/start"), tok)
	checkRejected(t, err, tok, "192.168.0.10 is a private address")
}

// TestJWKSFetchBounded: a JWKS endpoint cannot hold the fetch beyond the
// fetch timeout, nor make it read more than MaxJWKSSize of body or 64 KiB
// of headers (those cases have a timeout long enough that the size limit
// is what ends them).
func TestJWKSFetchBounded(t *testing.T) {
	tests := []struct {
		name    string
		timeout time.Duration
		handler http.HandlerFunc
		want    string
	}{
		{"endless body", 30 * time.Second, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"keys":[],"pad":"`))
			chunk := []byte(strings.Repeat("x", 64<<10))
			for r.Context().Err() == nil {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		}, "larger than 1048576 bytes"},
		{"body dribbled", 300 * time.Millisecond, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"keys":[`))
			for r.Context().Err() == nil {
				w.(http.Flusher).Flush()
				time.Sleep(10 * time.Millisecond)
				if _, err := w.Write([]byte(" ")); err != nil {
					return
				}
			}
		}, "deadline exceeded"},
		{"headers never end", 30 * time.Second, func(w http.ResponseWriter, r *http.Request) {
			for i := 0; i < 100; i++ {
				w.Header().Add("X-Pad", strings.Repeat("h", 1000))
			}
			w.WriteHeader(http.StatusOK)
		}, "server response headers exceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			t.Cleanup(srv.Close)
			v := jwtauth.NewVerifier(jwtauth.Options{Now: newClock().Now, AllowLoopback: true, FetchTimeout: tt.timeout})
			tok := sign(t, jwt.SigningMethodRS256, rsaKey1(), "key1", claims(nil))
			start := time.Now()
			_, err := v.Verify(context.Background(), jwksProvider(srv.URL+"/keys"), tok)
			checkRejected(t, err, tok, tt.want)
			if d := time.Since(start); d > tt.timeout+5*time.Second {
				t.Errorf("the fetch took %v", d)
			}
		})
	}
}
