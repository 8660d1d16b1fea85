package techpass

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

func TestRenewalLead(t *testing.T) {
	for _, tt := range []struct {
		policy         RenewalPolicy
		lifetime, want time.Duration
	}{
		{RenewalPolicy{}, 1199 * time.Second, 1199 * time.Second / 6}, // Azure's 20 minutes: renewed ~200 s early
		{RenewalPolicy{}, 6 * time.Hour, time.Hour},                   // "a 6-hour token is renewed in its last hour"
		{RenewalPolicy{}, 5 * time.Minute, time.Minute},               // the one-minute floor
		{RenewalPolicy{}, 90 * time.Second, 45 * time.Second},         // short tokens: half their life
		{RenewalPolicy{}, 10 * time.Second, 5 * time.Second},
		{RenewalPolicy{}, 3 * time.Second, 1500 * time.Millisecond},
		{RenewalPolicy{Share: 0.5}, 6 * time.Hour, 3 * time.Hour}, // configurable share
		{RenewalPolicy{Share: 0.01}, 1200 * time.Second, time.Minute},
		{RenewalPolicy{Share: 0.01, Min: 10 * time.Second}, 1200 * time.Second, 12 * time.Second},
		{RenewalPolicy{Min: 5 * time.Minute}, 1200 * time.Second, 5 * time.Minute},
	} {
		if got := tt.policy.Lead(tt.lifetime); got != tt.want {
			t.Errorf("%+v.Lead(%v) = %v, want %v", tt.policy, tt.lifetime, got, tt.want)
		}
	}
	for _, bad := range []RenewalPolicy{{Share: 1}, {Share: -0.1}, {Min: -time.Second}} {
		if bad.Validate() == nil {
			t.Errorf("%+v must not validate", bad)
		}
	}
}

// fakeEndpoint is a token endpoint on a manual clock.
type fakeEndpoint struct {
	mu       sync.Mutex
	now      time.Time
	lifetime time.Duration
	fail     error
	fetches  int
}

func (f *fakeEndpoint) clock() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now }

func (f *fakeEndpoint) set(at time.Time, fail error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now, f.fail = at, fail
}

func (f *fakeEndpoint) fetch(context.Context) (*oauth2.Token, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fetches++
	if f.fail != nil {
		return nil, f.fail
	}
	return &oauth2.Token{AccessToken: "tok" + string(rune('0'+f.fetches)), ExpiresIn: int64(f.lifetime / time.Second)}, nil
}

func (f *fakeEndpoint) count() int { f.mu.Lock(); defer f.mu.Unlock(); return f.fetches }

func newFakeCache(t0 time.Time, lifetime time.Duration, log *slog.Logger) (*tokenCache, *fakeEndpoint) {
	f := &fakeEndpoint{now: t0, lifetime: lifetime}
	c := newTokenCache(f.fetch, f.clock, RenewalPolicy{}, log)
	c.rand = func() float64 { return 1 } // the longest backoff of the draw
	return c, f
}

var (
	outage  = &TokenError{Status: 503, Code: "temporarily_unavailable", AADSTS: "AADSTS90033"}
	refused = &TokenError{Status: 401, Code: "invalid_client", AADSTS: "AADSTS7000215"}
)

// TestTokenCacheTimeline walks a fixed timeline: cached until the renewal
// point, renewed after it, the old token kept while renewal fails and it is
// still valid, retries spaced by backoff rather than at every call, and an
// error once it has expired.
func TestTokenCacheTimeline(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c, f := newFakeCache(t0, 1200*time.Second, nil)
	ctx := context.Background()
	steps := []struct {
		at      time.Duration
		fail    error
		want    string
		wantErr bool
		fetches int
	}{
		{0, nil, "tok1", false, 1},                             // tok1 lives to 1200 s; renewal point 1000 s, used until 1195 s
		{999 * time.Second, nil, "tok1", false, 1},             // cached
		{1000 * time.Second, nil, "tok2", false, 2},            // renewed; tok2 lives to 2200 s
		{1900 * time.Second, nil, "tok2", false, 2},            // cached
		{2000 * time.Second, outage, "tok2", false, 3},         // renewal fails: tok2 is still valid; next try in 1 s
		{2000500 * time.Millisecond, outage, "tok2", false, 3}, // backing off: no request
		{2001 * time.Second, outage, "tok2", false, 4},         // retried; next try in 2 s
		{2002 * time.Second, outage, "tok2", false, 4},         // backing off
		{2003 * time.Second, outage, "tok2", false, 5},         // retried; next in 4 s
		{2196 * time.Second, outage, "", true, 6},              // within 5 s of expiry: the failure surfaces
		{2196500 * time.Millisecond, outage, "", true, 6},      // backing off without a token: the last error, no request
		{2300 * time.Second, nil, "tok7", false, 7},            // the endpoint is back
	}
	for _, s := range steps {
		f.set(t0.Add(s.at), s.fail)
		got, err := c.token(ctx)
		if (err != nil) != s.wantErr || got != s.want || f.count() != s.fetches {
			t.Fatalf("at %v: token %q err %v fetches %d; want %q err %v fetches %d", s.at, got, err, f.count(), s.want, s.wantErr, s.fetches)
		}
		if err != nil {
			var te *TokenError
			if !errors.As(err, &te) || te.Code != "temporarily_unavailable" {
				t.Fatalf("at %v: error %v, want the token error", s.at, err)
			}
			if retry, after, throttled := Temporary(err); !retry || throttled || after <= 0 {
				t.Errorf("at %v: Temporary = %v %v %v; want retry after the backoff", s.at, retry, after, throttled)
			}
		}
	}
}

// TestTokenCacheBackoffFitsTheRemainingLife: while a valid token remains,
// the backoff is at most a quarter of its remaining life, so a short outage
// in the renewal window never lets it expire untried.
func TestTokenCacheBackoffFitsTheRemainingLife(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c, f := newFakeCache(t0, 3*time.Second, nil) // renewal at 1.5 s, used until 2.7 s
	ctx := context.Background()
	if _, err := c.token(ctx); err != nil {
		t.Fatal(err)
	}
	f.set(t0.Add(1500*time.Millisecond), outage)
	if got, err := c.token(ctx); err != nil || got != "tok1" {
		t.Fatalf("during the outage: %q %v", got, err)
	}
	h := c.snapshot()
	if h.State != TokenUnavailable || h.NextAttempt.Sub(t0) > 1800*time.Millisecond {
		t.Fatalf("health %+v: next attempt must be within a quarter of the 1.2 s left", h)
	}
	f.set(h.NextAttempt, nil) // the endpoint is back by the next try
	if got, err := c.token(ctx); err != nil || got != "tok3" {
		t.Fatalf("after the outage: %q %v", got, err)
	}
	if h := c.snapshot(); h.State != TokenOK || h.ConsecutiveFailures != 0 || h.Requests != 3 || h.Failures != 1 {
		t.Errorf("health after recovery %+v", h)
	}
}

func TestTokenCacheKeepsValidTokenWhenRenewalFails(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c, f := newFakeCache(t0, 1200*time.Second, nil)
	if _, err := c.token(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.set(t0.Add(1100*time.Second), outage) // past the renewal point, before expiry
	if got, err := c.token(context.Background()); err != nil || got != "tok1" {
		t.Fatalf("during a token outage the valid token must be used: %q %v", got, err)
	}
	c.invalidate("tok1")
	if _, err := c.token(context.Background()); err == nil {
		t.Fatal("after invalidation a failure must surface")
	}
}

// TestTokenCacheHealthAndLogs: refused credentials become a clear state,
// logged once at error level when it begins (not at every call), and a
// recovery is logged once too. Nothing logged holds a token.
func TestTokenCacheHealthAndLogs(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c, f := newFakeCache(t0, 1200*time.Second, log)
	ctx := context.Background()
	if _, err := c.token(ctx); err != nil {
		t.Fatal(err)
	}
	if h := c.snapshot(); h.State != TokenOK || h.Problem() != "" || h.TokenValidUntil.IsZero() {
		t.Fatalf("healthy: %+v", h)
	}
	for i := range 5 {
		f.set(t0.Add(1000*time.Second+time.Duration(i)*30*time.Second), refused)
		if got, err := c.token(ctx); err != nil || got != "tok1" {
			t.Fatalf("refused renewal must keep the valid token: %q %v", got, err)
		}
	}
	h := c.snapshot()
	if h.State != TokenRefused || h.Code != "invalid_client" || h.AADSTS != "AADSTS7000215" || !h.Since.Equal(t0.Add(1000*time.Second)) {
		t.Fatalf("refused: %+v", h)
	}
	want := "token endpoint: invalid_client (AADSTS7000215, HTTP 401) since 2026-01-01T00:16:40Z; the current access token is used until 2026-01-01T00:19:55Z"
	if h.Problem() != want {
		t.Errorf("Problem() =\n %q\nwant\n %q", h.Problem(), want)
	}
	if n := strings.Count(logs.String(), `"level":"ERROR"`); n != 1 {
		t.Errorf("%d error lines, want exactly one at the state change:\n%s", n, logs.String())
	}
	f.set(t0.Add(1300*time.Second), refused) // the old token has expired too
	if _, err := c.token(ctx); err == nil {
		t.Fatal("no valid token and refused credentials must fail")
	}
	if p := c.snapshot().Problem(); !strings.Contains(p, "no valid access token") {
		t.Errorf("Problem() = %q", p)
	}
	f.set(t0.Add(1400*time.Second), nil)
	if _, err := c.token(ctx); err != nil {
		t.Fatal(err)
	}
	if h := c.snapshot(); h.State != TokenOK {
		t.Errorf("recovered: %+v", h)
	}
	if n := strings.Count(logs.String(), "issued a token again"); n != 1 {
		t.Errorf("recovery logged %d times:\n%s", n, logs.String())
	}
	if strings.Contains(logs.String(), "tok1") {
		t.Errorf("a token reached the logs:\n%s", logs.String())
	}
}

// TestTokenCacheCredentialsChanged: a rotation forgets the backoff and makes
// the token due, so new credentials are tried at the next use.
func TestTokenCacheCredentialsChanged(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c, f := newFakeCache(t0, 1200*time.Second, nil)
	ctx := context.Background()
	if _, err := c.token(ctx); err != nil {
		t.Fatal(err)
	}
	f.set(t0.Add(time.Minute), nil)
	c.credentialsChanged()
	if got, err := c.token(ctx); err != nil || got != "tok2" || f.count() != 2 {
		t.Fatalf("after a change the token is renewed at the next use: %q %v %d", got, err, f.count())
	}
	// A failing renewal backs off; a change lifts the backoff at once.
	f.set(t0.Add(1100*time.Second), refused)
	_, _ = c.token(ctx)
	_, _ = c.token(ctx)
	if f.count() != 3 {
		t.Fatalf("fetches %d, want 3 (one failed renewal, then backoff)", f.count())
	}
	f.set(t0.Add(1100*time.Second), nil)
	c.credentialsChanged()
	if got, err := c.token(ctx); err != nil || got != "tok4" {
		t.Fatalf("after a fix: %q %v", got, err)
	}
}

// TestTokenCacheAdopt: a cache rebuilt for the same application takes
// over the token without a request; after a credential change it tries its
// own credential at the next use and, refused, keeps serving the token
// until it expires, reporting the refusal.
func TestTokenCacheAdopt(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	old, _ := newFakeCache(t0, 1200*time.Second, nil)
	ctx := context.Background()
	if _, err := old.token(ctx); err != nil {
		t.Fatal(err)
	}
	c, f := newFakeCache(t0.Add(time.Minute), 1200*time.Second, nil)
	c.adopt(old)
	if got, err := c.token(ctx); err != nil || got != "tok1" || f.count() != 0 {
		t.Fatalf("adopted token: %q %v, fetches %d", got, err, f.count())
	}
	f.set(t0.Add(time.Minute), refused)
	c.credentialsChanged()
	if got, err := c.token(ctx); err != nil || got != "tok1" || f.count() != 1 {
		t.Fatalf("refused renewal: %q %v, fetches %d; want the adopted token after one request", got, err, f.count())
	}
	if h := c.snapshot(); h.State != TokenRefused || h.TokenValidUntil.IsZero() || h.LastSuccess.IsZero() {
		t.Fatalf("health after the refusal: %+v", h)
	}
	f.set(t0.Add(1200*time.Second), refused) // the adopted token has expired
	if _, err := c.token(ctx); err == nil {
		t.Fatal("an expired adopted token was used")
	}
}

// TestTokenCacheRefresh: Refresh asks at once, whatever the schedule, and
// keeps the current token when it fails.
func TestTokenCacheRefresh(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c, f := newFakeCache(t0, 1200*time.Second, nil)
	ctx := context.Background()
	if err := c.refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.refresh(ctx); err != nil || f.count() != 2 {
		t.Fatalf("refresh: %v, fetches %d", err, f.count())
	}
	f.set(t0, outage)
	if err := c.refresh(ctx); err == nil {
		t.Fatal("a failed refresh reports its error")
	}
	if got, err := c.token(ctx); err != nil || got != "tok2" {
		t.Fatalf("the current token serves after a failed refresh: %q %v", got, err)
	}
}

// TestTokenCacheSingleFlight: concurrent callers without a token cause one
// request; while one caller renews, the others keep the current token
// without waiting.
func TestTokenCacheSingleFlight(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	release := make(chan struct{})
	var fetches atomic.Int32
	now := t0
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	c := newTokenCache(func(ctx context.Context) (*oauth2.Token, error) {
		n := fetches.Add(1)
		if n == 2 {
			<-release // the renewal hangs
		}
		return &oauth2.Token{AccessToken: "tok" + string(rune('0'+n)), ExpiresIn: 1200}, nil
	}, clock, RenewalPolicy{}, nil)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := c.token(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if fetches.Load() != 1 {
		t.Fatalf("%d token requests for 20 concurrent callers, want 1", fetches.Load())
	}
	mu.Lock()
	now = t0.Add(1100 * time.Second) // due for renewal
	mu.Unlock()
	done := make(chan struct{})
	go func() { _, _ = c.token(context.Background()); close(done) }()
	for fetches.Load() != 2 {
		time.Sleep(time.Millisecond)
	}
	for range 10 {
		if got, err := c.token(context.Background()); err != nil || got != "tok1" {
			t.Fatalf("while another caller renews: %q %v", got, err)
		}
	}
	close(release)
	<-done
	if got, _ := c.token(context.Background()); got != "tok2" || fetches.Load() != 2 {
		t.Errorf("after the renewal: %q, %d requests", got, fetches.Load())
	}
}

// TestTokenCacheCancelledCallerIsNotAFailure: a caller giving up says
// nothing about the token endpoint.
func TestTokenCacheCancelledCallerIsNotAFailure(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := newTokenCache(func(ctx context.Context) (*oauth2.Token, error) {
		<-ctx.Done()
		return nil, &TokenError{err: ctx.Err()}
	}, func() time.Time { return t0 }, RenewalPolicy{}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.token(ctx); err == nil {
		t.Fatal("want an error")
	}
	if h := c.snapshot(); h.State != TokenOK || h.Failures != 0 || !h.NextAttempt.IsZero() {
		t.Errorf("a cancelled request changed the health: %+v", h)
	}
}
