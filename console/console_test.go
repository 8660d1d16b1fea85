package console_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/groupgate/groupgate/console"
	"github.com/groupgate/groupgate/tenants"
)

// keyring is a fake Authenticator: keys by their text, revocable.
type keyring struct {
	mu      sync.Mutex
	keys    map[string]tenants.Principal
	revoked map[string]bool
}

func (k *keyring) Authenticate(_ context.Context, key string) (tenants.Principal, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	p, ok := k.keys[key]
	if !ok || k.revoked[p.KeyID] {
		return tenants.Principal{}, tenants.ErrUnauthenticated
	}
	return p, nil
}

func (k *keyring) Resume(_ context.Context, id string) (tenants.Principal, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, p := range k.keys {
		if p.KeyID == id && !k.revoked[id] {
			return p, nil
		}
	}
	return tenants.Principal{}, tenants.ErrUnauthenticated
}

func (k *keyring) Peek(ctx context.Context, id string) (tenants.Principal, error) {
	return k.Resume(ctx, id)
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type fixture struct {
	t        *testing.T
	srv      *httptest.Server
	keys     *keyring
	clock    *clock
	sessions *console.MemorySessions
	// seen is the principal of each in-process API request.
	seen chan tenants.Principal
}

const projectKey = "gk_0123456789abcdef0123_" + "s3cret-s3cret-s3cret-s3cret-s3cret-s3cret-s"

func newFixture(t *testing.T) *fixture {
	f := &fixture{
		t:        t,
		keys:     &keyring{keys: map[string]tenants.Principal{projectKey: {Role: tenants.RoleProject, KeyID: "0123456789abcdef0123", Tenant: "SHIP", Project: "MOH"}}, revoked: map[string]bool{}},
		clock:    &clock{now: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)},
		sessions: console.NewMemorySessions(),
		seen:     make(chan tenants.Principal, 100),
	}
	// The API stand-in answers every queue read with an empty queue status
	// and notes whom the console sent.
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := console.PrincipalFrom(r.Context())
		f.seen <- p
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"estimatedStartAt":"2026-03-02T09:00:00Z","intervalSeconds":1,"project":{"max":10,"pending":0},"projectsWaiting":0,"tenant":{"max":100,"pending":0}}`)
	})
	c, err := console.New(console.Config{
		API: api, Auth: f.keys, Sessions: f.sessions, Now: f.clock.Now,
		IdleTimeout: 10 * time.Minute, MaxLifetime: 30 * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(c)
	t.Cleanup(f.srv.Close)
	return f
}

type browser struct {
	f    *fixture
	http *http.Client
}

func (f *fixture) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{f: f, http: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) do(method, path string, form url.Values) (int, http.Header, string) {
	b.f.t.Helper()
	req, err := http.NewRequest(method, b.f.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.f.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.http.Do(req)
	if err != nil {
		b.f.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(body)
}

func (b *browser) signin(key string) int {
	b.f.t.Helper()
	_, _, page := b.do("GET", "/console/signin", nil)
	m := regexp.MustCompile(`name="token" value="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		b.f.t.Fatalf("no sign-in token in %s", page)
	}
	status, _, _ := b.do("POST", "/console/signin", url.Values{"key": {key}, "token": {m[1]}})
	return status
}

// TestSessionLimits: activity keeps a session alive up to its absolute
// lifetime; idleness ends it; background polls do not count as activity.
func TestSessionLimits(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	if s := b.signin(projectKey); s != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", s)
	}
	for range 3 {
		f.clock.advance(9 * time.Minute)
		if s, _, _ := b.do("GET", "/console/queue", nil); s != http.StatusOK {
			t.Fatalf("active session ended early: %d", s)
		}
	}
	f.clock.advance(4 * time.Minute) // 31 minutes in, 4 idle
	if s, h, _ := b.do("GET", "/console/queue", nil); s != http.StatusSeeOther || !strings.Contains(h.Get("Location"), "ended=expired") {
		t.Fatalf("past the absolute lifetime: %d %q, want a redirect to sign-in", s, h.Get("Location"))
	}

	if s := b.signin(projectKey); s != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", s)
	}
	for range 4 { // polls every 2 minutes: not activity
		f.clock.advance(2 * time.Minute)
		if s, _, _ := b.do("GET", "/console/live/queue", nil); s != http.StatusOK {
			t.Fatalf("poll: %d", s)
		}
	}
	f.clock.advance(3 * time.Minute)
	if s, _, _ := b.do("GET", "/console/live/queue", nil); s != http.StatusUnauthorized {
		t.Fatalf("poll after 11 idle minutes: %d, want 401", s)
	}
	if n := f.sessions.Len(); n != 0 {
		t.Errorf("%d sessions left after both ended", n)
	}
}

// TestSessionHoldsNoKey: the store keeps the key's id, never the key; the
// API is called as the key's principal; revoking the key ends the session.
func TestSessionHoldsNoKey(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	if s := b.signin(projectKey); s != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", s)
	}
	var stored []console.Session
	f.sessions.Sweep(func(s console.Session) bool { stored = append(stored, s); return false })
	if len(stored) != 1 || stored[0].KeyID != "0123456789abcdef0123" || strings.Contains(fmt.Sprintf("%+v", stored[0]), projectKey) {
		t.Fatalf("stored sessions %+v", stored)
	}
	if s, _, page := b.do("GET", "/console/tenants/SHIP/projects/MOH", nil); strings.Contains(page, projectKey) {
		t.Fatalf("page (%d) shows the key", s)
	}
	select {
	case p := <-f.seen:
		if p.KeyID != "0123456789abcdef0123" || p.Project != "MOH" {
			t.Errorf("API called as %+v", p)
		}
	default:
		t.Fatal("the project page made no API request")
	}
	f.keys.mu.Lock()
	f.keys.revoked["0123456789abcdef0123"] = true
	f.keys.mu.Unlock()
	if s, h, _ := b.do("GET", "/console/queue", nil); s != http.StatusSeeOther || !strings.Contains(h.Get("Location"), "ended=revoked") {
		t.Fatalf("after revocation: %d %q", s, h.Get("Location"))
	}
	if n := f.sessions.Len(); n != 0 {
		t.Errorf("the revoked key's session is still stored")
	}
}

// TestSigninRefusals: a wrong key, or a form without its token, gets no
// session.
func TestSigninRefusals(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	if s := b.signin("gk_0123456789abcdef0123_" + strings.Repeat("w", 43)); s != http.StatusUnauthorized {
		t.Errorf("wrong key: %d, want 401", s)
	}
	if s, _, _ := b.do("POST", "/console/signin", url.Values{"key": {projectKey}}); s != http.StatusForbidden {
		t.Errorf("no form token: %d, want 403", s)
	}
	if n := f.sessions.Len(); n != 0 {
		t.Errorf("%d sessions after refused sign-ins", n)
	}
}
