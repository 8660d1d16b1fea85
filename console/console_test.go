package console_test

import (
	"context"
	"errors"
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
	"github.com/groupgate/groupgate/internal/testkit"
	"github.com/groupgate/groupgate/tenants"
)

// keyring is a fake Authenticator: keys by their text, revocable.
type keyring struct {
	mu      sync.Mutex
	keys    map[string]tenants.Principal
	revoked map[string]bool
	// checked counts Authenticate calls; resumed and peeked the
	// Resume and Peek calls that succeeded.
	checked, resumed, peeked int
	// down makes Resume and Peek fail as a store that cannot be read.
	down bool
}

func (k *keyring) Authenticate(_ context.Context, key string) (tenants.Principal, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.checked++
	p, ok := k.keys[key]
	if !ok || k.revoked[p.KeyID] {
		return tenants.Principal{}, tenants.ErrUnauthenticated
	}
	return p, nil
}

func (k *keyring) Resume(_ context.Context, id string) (tenants.Principal, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	p, err := k.find(id)
	if err == nil {
		k.resumed++
	}
	return p, err
}

func (k *keyring) Peek(_ context.Context, id string) (tenants.Principal, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	p, err := k.find(id)
	if err == nil {
		k.peeked++
	}
	return p, err
}

func (k *keyring) find(id string) (tenants.Principal, error) {
	if k.down {
		return tenants.Principal{}, errors.New("store: database not open")
	}
	for _, p := range k.keys {
		if p.KeyID == id && !k.revoked[id] {
			return p, nil
		}
	}
	return tenants.Principal{}, tenants.ErrUnauthenticated
}

type fixture struct {
	t        *testing.T
	srv      *httptest.Server
	keys     *keyring
	clock    *testkit.Clock
	sessions *console.MemorySessions
	// seen is the principal of each in-process API request.
	seen chan tenants.Principal
}

const projectKey = "gk_0123456789abcdef0123_" + "s3cret-s3cret-s3cret-s3cret-s3cret-s3cret-s"

func newFixture(t *testing.T) *fixture {
	f := &fixture{
		t:        t,
		keys:     &keyring{keys: map[string]tenants.Principal{projectKey: {Role: tenants.RoleProject, KeyID: "0123456789abcdef0123", Tenant: "SHIP", Project: "MOH"}}, revoked: map[string]bool{}},
		clock:    testkit.NewClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)),
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
		f.clock.Advance(9 * time.Minute)
		if s, _, _ := b.do("GET", "/console/queue", nil); s != http.StatusOK {
			t.Fatalf("active session ended early: %d", s)
		}
	}
	f.clock.Advance(4 * time.Minute) // 31 minutes in, 4 idle
	if s, h, _ := b.do("GET", "/console/queue", nil); s != http.StatusSeeOther || !strings.Contains(h.Get("Location"), "ended=expired") {
		t.Fatalf("past the absolute lifetime: %d %q, want a redirect to sign-in", s, h.Get("Location"))
	}

	if s := b.signin(projectKey); s != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", s)
	}
	for range 4 { // polls every 2 minutes: not activity
		f.clock.Advance(2 * time.Minute)
		if s, _, _ := b.do("GET", "/console/live/queue", nil); s != http.StatusOK {
			t.Fatalf("poll: %d", s)
		}
	}
	f.clock.Advance(3 * time.Minute)
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
	// A refused sign-in does not echo the key it was sent.
	wrong := "gk_0123456789abcdef0123_" + strings.Repeat("x", 43)
	other := f.browser()
	_, _, form := other.do("GET", "/console/signin", nil)
	token := regexp.MustCompile(`name="token" value="([^"]+)"`).FindStringSubmatch(form)[1]
	if s, _, page := other.do("POST", "/console/signin", url.Values{"key": {wrong}, "token": {token}}); s != http.StatusUnauthorized || strings.Contains(page, wrong) {
		t.Fatalf("refused sign-in (%d) shows the key it was sent", s)
	}
	b.do("GET", "/console/tenants/SHIP/projects/MOH", nil)
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

// cookie returns the value of the browser's cookie name.
func (b *browser) cookie(name string) string {
	u, _ := url.Parse(b.f.srv.URL)
	for _, c := range b.http.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// withCookie requests path with only the session cookie id.
func (f *fixture) withCookie(id, path string) (int, string) {
	req, _ := http.NewRequest("GET", f.srv.URL+path, nil)
	req.AddCookie(&http.Cookie{Name: "gg", Value: id})
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Location")
}

// TestSessionIDs: signing out ends the session on the server, not just in
// the browser; signing in drops the session id the browser presented (a
// real one planted from another sign-in: no fixation); a key has at most
// MaxSessionsPerKey sessions, the oldest ending first.
func TestSessionIDs(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	b.signin(projectKey)
	old := b.cookie("gg")
	_, _, page := b.do("GET", "/console/queue", nil)
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page)[1]
	if s, _, _ := b.do("POST", "/console/signout", url.Values{"csrf": {csrf}}); s != http.StatusSeeOther {
		t.Fatalf("sign-out: %d", s)
	}
	if s, loc := f.withCookie(old, "/console/queue"); s != http.StatusSeeOther || !strings.Contains(loc, "signin") {
		t.Errorf("the signed-out session id still works: %d %q", s, loc)
	}

	// Fixation: the attacker signs in, plants its session id in the
	// victim's browser; the victim's sign-in must kill that id.
	attacker := f.browser()
	attacker.signin(projectKey)
	planted := attacker.cookie("gg")
	victim := f.browser()
	u, _ := url.Parse(f.srv.URL)
	victim.http.Jar.SetCookies(u, []*http.Cookie{{Name: "gg", Value: planted, Path: "/"}})
	_, _, form := victim.do("GET", "/console/signin", nil) // a live session is sent on
	if m := regexp.MustCompile(`name="token" value="([^"]+)"`).FindStringSubmatch(form); m != nil {
		victim.do("POST", "/console/signin", url.Values{"key": {projectKey}, "token": {m[1]}})
	} else {
		// The planted session was live, so the sign-in page sent the
		// browser on; sign in through a fresh form.
		victim.http.Jar.SetCookies(u, []*http.Cookie{{Name: "gg", Value: planted, Path: "/"}})
		fresh := f.browser()
		_, _, form = fresh.do("GET", "/console/signin", nil)
		token := regexp.MustCompile(`name="token" value="([^"]+)"`).FindStringSubmatch(form)[1]
		victim.http.Jar.SetCookies(u, []*http.Cookie{{Name: "gg-signin", Value: fresh.cookie("gg-signin"), Path: "/"}})
		if s, _, _ := victim.do("POST", "/console/signin", url.Values{"key": {projectKey}, "token": {token}}); s != http.StatusSeeOther {
			t.Fatalf("victim's sign-in: %d", s)
		}
	}
	if got := victim.cookie("gg"); got == "" || got == planted {
		t.Errorf("victim's session id after sign-in: %q (planted %q)", got, planted)
	}
	if s, _ := f.withCookie(planted, "/console/queue"); s != http.StatusSeeOther {
		t.Errorf("the planted session id still works after the victim's sign-in: %d", s)
	}

	// At most MaxSessionsPerKey sessions per key: the oldest ends.
	f2 := newFixture(t)
	var ids []string
	for range console.MaxSessionsPerKey + 1 {
		f2.clock.Advance(time.Second)
		br := f2.browser()
		br.signin(projectKey)
		ids = append(ids, br.cookie("gg"))
	}
	if n := f2.sessions.Len(); n != console.MaxSessionsPerKey {
		t.Errorf("%d sessions of one key, want %d", n, console.MaxSessionsPerKey)
	}
	if s, _ := f2.withCookie(ids[0], "/console/queue"); s != http.StatusSeeOther {
		t.Errorf("the oldest session survived: %d", s)
	}
	if s, _ := f2.withCookie(ids[len(ids)-1], "/console/queue"); s != http.StatusOK {
		t.Errorf("the newest session: %d", s)
	}
}

// TestSigninLimits: only keys of groupgate's shape are checked (a token is
// refused without authenticating), and failed sign-ins are limited per key
// id, for a minute.
func TestSigninLimits(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	if s := b.signin("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"); s != http.StatusUnauthorized {
		t.Errorf("a JWT: %d, want 401", s)
	}
	if f.keys.checked != 0 {
		t.Errorf("a JWT was authenticated (%d calls)", f.keys.checked)
	}
	wrong := "gk_0123456789abcdef0123_" + strings.Repeat("x", 43)
	for i := range 5 {
		if s := b.signin(wrong); s != http.StatusUnauthorized {
			t.Fatalf("wrong key, try %d: %d", i+1, s)
		}
	}
	if s := b.signin(projectKey); s != http.StatusTooManyRequests {
		t.Errorf("the right key after 5 failures of its id within a minute: %d, want 429", s)
	}
	f.clock.Advance(time.Minute)
	if s := b.signin(projectKey); s != http.StatusSeeOther {
		t.Errorf("the right key a minute later: %d, want 303", s)
	}
}

// TestSessionCheckFails: a poll does not record a use of the key; a store
// that cannot be read answers 503 and keeps the session (it is not a
// revocation).
func TestSessionCheckFails(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	b.signin(projectKey)
	b.do("GET", "/console/live/queue", nil)
	if f.keys.peeked != 1 || f.keys.resumed != 0 {
		t.Errorf("a poll: %d peeks, %d resumes; want 1 peek", f.keys.peeked, f.keys.resumed)
	}
	f.keys.mu.Lock()
	f.keys.down = true
	f.keys.mu.Unlock()
	if s, _, _ := b.do("GET", "/console/queue", nil); s != http.StatusServiceUnavailable {
		t.Errorf("page while the store is down: %d, want 503", s)
	}
	if s, _, _ := b.do("GET", "/console/live/queue", nil); s != http.StatusServiceUnavailable {
		t.Errorf("poll while the store is down: %d, want 503", s)
	}
	f.keys.mu.Lock()
	f.keys.down = false
	f.keys.mu.Unlock()
	if s, _, _ := b.do("GET", "/console/queue", nil); s != http.StatusOK {
		t.Errorf("page once the store is back: %d, want 200 (the session kept)", s)
	}
}

// TestTokenState: the tenants page shows a tenant's token as ok only when
// the readiness check says so; without a check, or when readiness cannot
// be read, it is "unknown", styled as a warning, never ok.
func TestTokenState(t *testing.T) {
	const operatorKey = "gk_aaaaaaaaaaaaaaaaaaaa_" + "s3cret-s3cret-s3cret-s3cret-s3cret-s3cret-s"
	for _, tc := range []struct {
		name, readyz string
		readyStatus  int
		want         string
	}{
		{"readiness unreadable", `{}`, http.StatusInternalServerError, `class="badge token warn">unknown<`},
		{"no check", `{"status":"ready","checks":{}}`, http.StatusOK, `class="badge token warn">unknown<`},
		{"check passes", `{"status":"ready","checks":{"upstream:SHIP":{"status":"ok"}}}`, http.StatusOK, `class="badge token ok">ok<`},
		{"check fails", `{"status":"not ready","checks":{"upstream:SHIP":{"status":"failing","detail":"refused"}}}`, http.StatusServiceUnavailable, `class="badge token bad">failing<`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				switch r.URL.Path {
				case "/v1/tenants":
					fmt.Fprint(w, `{"tenants":[{"name":"SHIP","createdAt":"2026-03-01T00:00:00Z","updatedAt":"2026-03-01T00:00:00Z","disabled":false,"groupLimit":100,"intervalSeconds":1,"techpass":{"upstream":"simulator","clientSecret":{"kind":"file"},"apiKey":{"kind":"file"}}}]}`)
				case "/readyz":
					w.WriteHeader(tc.readyStatus)
					fmt.Fprint(w, tc.readyz)
				default:
					w.Header().Set("Content-Type", "application/problem+json")
					w.WriteHeader(http.StatusNotFound)
					fmt.Fprint(w, `{"title":"Not found","status":404}`)
				}
			})
			keys := &keyring{keys: map[string]tenants.Principal{operatorKey: {Role: tenants.RoleOperator, KeyID: "aaaaaaaaaaaaaaaaaaaa"}}, revoked: map[string]bool{}}
			c, err := console.New(console.Config{API: api, Auth: keys})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(c)
			defer srv.Close()
			f := &fixture{t: t, srv: srv, keys: keys}
			b := f.browser()
			if s := b.signin(operatorKey); s != http.StatusSeeOther {
				t.Fatalf("sign-in: %d", s)
			}
			s, _, page := b.do("GET", "/console/tenants", nil)
			if s != http.StatusOK || !strings.Contains(page, tc.want) {
				t.Errorf("tenants page (%d) lacks %s:\n%s", s, tc.want, page)
			}
		})
	}
}
