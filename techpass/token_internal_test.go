package techpass

import (
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

func TestRenewalLead(t *testing.T) {
	for _, tt := range []struct{ lifetime, want time.Duration }{
		{1199 * time.Second, 1199 * time.Second / 6}, // Azure's 20 minutes: renewed ~200 s early
		{6 * time.Hour, time.Hour},                   // "a 6-hour token is renewed in its last hour"
		{5 * time.Minute, time.Minute},               // the one-minute floor
		{90 * time.Second, 45 * time.Second},         // short tokens: half their life
		{10 * time.Second, 5 * time.Second},
	} {
		if got := renewalLead(tt.lifetime); got != tt.want {
			t.Errorf("renewalLead(%v) = %v, want %v", tt.lifetime, got, tt.want)
		}
	}
}

// TestTokenCacheTimeline walks a fixed timeline: cached until the renewal
// point, renewed after it, the old token kept while renewal fails and it is
// still valid, and an error once it has expired.
func TestTokenCacheTimeline(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := t0
	fetches := 0
	var failWith error
	c := &tokenCache{now: func() time.Time { return now }, fetch: func(context.Context) (*oauth2.Token, error) {
		fetches++
		if failWith != nil {
			return nil, failWith
		}
		return &oauth2.Token{AccessToken: "tok" + string(rune('0'+fetches)), Expiry: now.Add(1200 * time.Second)}, nil
	}}
	ctx := context.Background()
	down := errors.New("down")
	steps := []struct {
		at      time.Duration
		fail    error
		want    string
		wantErr bool
		fetches int
	}{
		{0, nil, "tok1", false, 1},                   // tok1 lives to 1200 s; renewal point 1000 s
		{999 * time.Second, nil, "tok1", false, 1},   // cached
		{1000 * time.Second, nil, "tok2", false, 2},  // renewed; tok2 lives to 2200 s
		{1900 * time.Second, nil, "tok2", false, 2},  // cached
		{2100 * time.Second, down, "tok2", false, 3}, // renewal fails: tok2 is still valid
		{2196 * time.Second, down, "", true, 4},      // within 5 s of expiry: the failure surfaces
	}
	for _, s := range steps {
		now = t0.Add(s.at)
		failWith = s.fail
		got, err := c.token(ctx)
		if (err != nil) != s.wantErr || got != s.want || fetches != s.fetches {
			t.Fatalf("at %v: token %q err %v fetches %d; want %q err %v fetches %d", s.at, got, err, fetches, s.want, s.wantErr, s.fetches)
		}
	}
}

func TestTokenCacheKeepsValidTokenWhenRenewalFails(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := t0
	var failWith error
	c := &tokenCache{now: func() time.Time { return now }, fetch: func(context.Context) (*oauth2.Token, error) {
		if failWith != nil {
			return nil, failWith
		}
		return &oauth2.Token{AccessToken: "tok", Expiry: now.Add(1200 * time.Second)}, nil
	}}
	if _, err := c.token(context.Background()); err != nil {
		t.Fatal(err)
	}
	failWith = &TokenError{Status: 503, Code: "temporarily_unavailable"}
	now = t0.Add(1100 * time.Second) // past the renewal point, before expiry
	if got, err := c.token(context.Background()); err != nil || got != "tok" {
		t.Fatalf("during a token outage the valid token must be used: %q %v", got, err)
	}
	c.invalidate("tok")
	if _, err := c.token(context.Background()); err == nil {
		t.Fatal("after invalidation a failed fetch must surface")
	}
}
