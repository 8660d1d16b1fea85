package techpass

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// Secret returns the current value of a credential. It is called each time
// the value is needed, so a file or variable that a secret manager rotates is
// picked up without a restart.
type Secret func() (string, error)

// TokenError is a sanitized failure of the token endpoint: the OAuth2 error
// code and HTTP status only, never the response body.
type TokenError struct {
	// Status is the token endpoint's HTTP status, 0 when no answer came.
	Status int
	// Code is the OAuth2 error code, such as invalid_client.
	Code string
	// AADSTS is Azure AD's numeric error code when it gave one.
	AADSTS string
	// RetryAfter is how long the client waits before asking the token
	// endpoint again (its backoff); zero when it would ask at once.
	RetryAfter time.Duration
	err        error
}

func (e *TokenError) Error() string { return "token request failed: " + e.Reason() }

// AADSTSClockSkew is Azure AD's code for a client assertion outside its
// valid time range (not yet valid, or expired): with assertions built at
// once and back-dated by AssertionSkew, a clock off between this host and
// the token endpoint.
const AADSTSClockSkew = "AADSTS700024"

// ClockSkew reports whether the token endpoint refused the client assertion
// as not within its valid time range: a clock problem, not a credential one.
func (e *TokenError) ClockSkew() bool { return e.AADSTS == AADSTSClockSkew }

// Reason words the failure without the "token request failed" prefix, for
// logs and /readyz: "invalid_client (AADSTS7000215, HTTP 401)".
func (e *TokenError) Reason() string {
	switch {
	case e.ClockSkew():
		return fmt.Sprintf("clock skew: the token endpoint finds the client assertion not within its valid time range (%s, HTTP %d); "+
			"this host's clock is probably off: check its time synchronisation (NTP)", e.AADSTS, e.Status)
	case e.Status == 0:
		return "no answer from the token endpoint"
	case e.Code == "":
		return fmt.Sprintf("HTTP %d", e.Status)
	case e.AADSTS != "":
		return fmt.Sprintf("%s (%s, HTTP %d)", e.Code, e.AADSTS, e.Status)
	default:
		return fmt.Sprintf("%s (HTTP %d)", e.Code, e.Status)
	}
}

// Unwrap returns the transport error when no answer came (for timeouts).
func (e *TokenError) Unwrap() error { return e.err }

// Temporary reports whether a retry may succeed without an operator's help:
// no answer, throttling, a server error or temporarily_unavailable. Any
// other answer (invalid_client, unauthorized_client, invalid_scope, a
// disabled or locked application...) means the credentials or the
// registration must be fixed.
func (e *TokenError) Temporary() bool {
	return e.Status == 0 || e.Status == http.StatusTooManyRequests || e.Status >= 500 || e.Code == "temporarily_unavailable"
}

// CredentialError means the client's own credential could not be read or
// used (a missing or malformed secret, certificate or key file): no token
// request was sent. Its message names the credential, never its value.
type CredentialError struct {
	// What names the credential, e.g. "client secret".
	What string
	// RetryAfter is as in TokenError.
	RetryAfter time.Duration
	err        error
}

func (e *CredentialError) Error() string { return fmt.Sprintf("%s unusable: %v", e.What, e.err) }

// Unwrap returns the loader's error.
func (e *CredentialError) Unwrap() error { return e.err }

var aadstsRE = regexp.MustCompile(`AADSTS\d{4,}`)

// Defaults of RenewalPolicy.
const (
	DefaultRenewalShare = 1.0 / 6
	DefaultRenewalMin   = time.Minute
)

// RenewalPolicy says when an access token is renewed: once less than Share
// of its lifetime remains, but at least Min before it expires (a 20-minute
// Azure AD token is renewed with 200 s left, a 6-hour one in its last hour, a
// 5-minute one with a minute left). A token shorter than 2*Min is renewed at
// half its life, so it is still used for a while. The zero value uses the
// defaults.
type RenewalPolicy struct {
	// Share of the lifetime left at which a token is renewed, in (0, 1).
	// Zero means DefaultRenewalShare.
	Share float64
	// Min is the least time before expiry at which a token is renewed.
	// Zero means DefaultRenewalMin.
	Min time.Duration
}

// Validate reports a share outside (0, 1) or a negative Min.
func (p RenewalPolicy) Validate() error {
	if p.Share < 0 || p.Share >= 1 || p.Share != p.Share {
		return errors.New("token renewal share must be in (0, 1)")
	}
	if p.Min < 0 {
		return errors.New("token renewal minimum must not be negative")
	}
	return nil
}

// Lead returns how long before expiry a token of lifetime is renewed.
func (p RenewalPolicy) Lead(lifetime time.Duration) time.Duration {
	share, minLead := p.Share, p.Min
	if share <= 0 || share >= 1 {
		share = DefaultRenewalShare
	}
	if minLead <= 0 {
		minLead = DefaultRenewalMin
	}
	return max(time.Duration(float64(lifetime)*share), min(minLead, lifetime/2))
}

// expiryMargin is how long before its expiry a token stops being used, so
// that it does not expire on the way: 5 s, or a tenth of a short lifetime.
func expiryMargin(lifetime time.Duration) time.Duration {
	return min(5*time.Second, lifetime/10)
}

// Backoff of failed token requests: the wait doubles from tokenBackoffBase
// up to tokenBackoffMax, with jitter; while a valid token remains it is at
// most a quarter of the token's remaining life, so several tries fit before
// it expires.
const (
	tokenBackoffBase  = time.Second
	tokenBackoffMax   = time.Minute
	tokenBackoffFloor = 10 * time.Millisecond
)

// TokenState is the state of a client's access to the token endpoint.
type TokenState string

// The token states, from the last token request.
const (
	// TokenOK: the last token request succeeded, or none was needed yet.
	TokenOK TokenState = "ok"
	// TokenUnavailable: the token endpoint failed temporarily (no answer,
	// 429, 5xx, temporarily_unavailable). The current token, if still
	// valid, is used meanwhile, and the request is retried with backoff.
	TokenUnavailable TokenState = "unavailable"
	// TokenRefused: the token endpoint refused the credentials
	// (invalid_client, unauthorized_client, invalid_scope, a disabled or
	// locked application...). An operator must fix them; rotation is picked
	// up without a restart.
	TokenRefused TokenState = "refused"
	// CredentialUnusable: the client's own credential could not be read or
	// used, so no token request was sent.
	CredentialUnusable TokenState = "credential_unusable"
)

// Health is the state of a client's token lifecycle, for /readyz, logs and
// metrics. It holds no credential and no token.
type Health struct {
	State TokenState
	// Reason words the last failure when State is not TokenOK, sanitized:
	// "invalid_client (AADSTS7000215, HTTP 401)".
	Reason string
	// Code and AADSTS are the token endpoint's error codes, when it gave
	// them.
	Code, AADSTS string
	// ClockSkew is true when the token endpoint refused the client
	// assertion as outside its valid time range (State TokenRefused): the
	// host's clock needs fixing, not the credentials.
	ClockSkew bool
	// Since is when the current State began (zero for TokenOK with no
	// failure yet).
	Since time.Time
	// LastAttempt and LastSuccess are the times of the last token request
	// and of the last one that got a token.
	LastAttempt, LastSuccess time.Time
	// TokenValidUntil is until when the token in memory is used; zero when
	// there is none.
	TokenValidUntil time.Time
	// NextAttempt is when the next token request may be sent after a
	// failure (backoff); zero when at once.
	NextAttempt time.Time
	// ConsecutiveFailures counts token request failures since the last
	// success.
	ConsecutiveFailures int
	// Requests and Failures count token requests since the client started.
	Requests, Failures int
}

// Problem words a failing state for an operator, "" when State is TokenOK:
// "token endpoint: invalid_client (AADSTS7000215, HTTP 401) since
// 2026-01-02T03:04:05Z; the current access token is used until ...".
func (h Health) Problem() string {
	if h.State == TokenOK {
		return ""
	}
	what := "token endpoint"
	if h.State == CredentialUnusable {
		what = "client credential"
	}
	msg := fmt.Sprintf("%s: %s since %s", what, h.Reason, h.Since.UTC().Format(time.RFC3339))
	if h.TokenValidUntil.IsZero() {
		return msg + "; no valid access token: this tenant's upstream calls fail until it is fixed"
	}
	return msg + "; the current access token is used until " + h.TokenValidUntil.UTC().Format(time.RFC3339)
}

// tokenCache holds one tenant's access token in memory and renews it ahead
// of expiry (see RenewalPolicy). Renewals are single-flight: one caller
// fetches while the others keep using the current token, or wait for the
// new one when there is none. A failed renewal keeps the current token in
// use until it expires and is retried with backoff, so the token endpoint is
// never hammered. The zero value is not usable; see newTokenCache.
type tokenCache struct {
	fetch  func(ctx context.Context) (*oauth2.Token, error)
	now    func() time.Time
	policy RenewalPolicy
	log    *slog.Logger
	rand   func() float64
	sem    chan struct{} // held by the caller fetching a token

	mu          sync.Mutex
	tok         *oauth2.Token
	renewAt     time.Time
	usableUntil time.Time
	nextTry     time.Time
	lastErr     error
	health      Health
}

func newTokenCache(fetch func(context.Context) (*oauth2.Token, error), now func() time.Time, policy RenewalPolicy, log *slog.Logger) *tokenCache {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &tokenCache{fetch: fetch, now: now, policy: policy, log: log, rand: rand.Float64,
		sem: make(chan struct{}, 1), health: Health{State: TokenOK}}
}

// current returns the token in memory if it may still be used at now.
// Call with c.mu held.
func (c *tokenCache) current(now time.Time) (string, bool) {
	if c.tok == nil || !now.Before(c.usableUntil) {
		return "", false
	}
	return c.tok.AccessToken, true
}

// token returns a valid access token, renewing it when due. If a renewal
// fails while the current token is still valid, the current one is used.
// An error is a *TokenError, a *CredentialError or ctx's error.
func (c *tokenCache) token(ctx context.Context) (string, error) {
	for {
		c.mu.Lock()
		now := c.now()
		cur, valid := c.current(now)
		fresh := valid && now.Before(c.renewAt)
		backingOff := now.Before(c.nextTry)
		var err error
		if backingOff && !valid {
			err = c.failure(now)
		}
		c.mu.Unlock()
		switch {
		case fresh, valid && backingOff:
			return cur, nil
		case backingOff:
			return "", err
		}

		if valid {
			select {
			case c.sem <- struct{}{}:
			default:
				return cur, nil // another caller is renewing; this token still serves
			}
		} else {
			select {
			case c.sem <- struct{}{}:
			case <-ctx.Done():
				return "", ctx.Err()
			}
		}
		// Another caller may have renewed, or failed, while this one waited.
		c.mu.Lock()
		now = c.now()
		_, valid = c.current(now)
		due := !(valid && now.Before(c.renewAt)) && !now.Before(c.nextTry)
		c.mu.Unlock()
		if !due {
			<-c.sem
			continue
		}
		tok, err := c.renew(ctx)
		<-c.sem
		if err == nil {
			return tok, nil
		}
		if ctx.Err() != nil {
			return "", err
		}
		c.mu.Lock()
		now = c.now()
		cur, valid = c.current(now)
		if !valid {
			err = c.failure(now)
		}
		c.mu.Unlock()
		if valid {
			return cur, nil
		}
		return "", err
	}
}

// failure returns the last failure, stamped with the wait until the next
// try. Call with c.mu held.
func (c *tokenCache) failure(now time.Time) error {
	wait := max(c.nextTry.Sub(now), 0)
	var te *TokenError
	var ce *CredentialError
	switch {
	case errors.As(c.lastErr, &te):
		cp := *te
		cp.RetryAfter = wait
		return &cp
	case errors.As(c.lastErr, &ce):
		cp := *ce
		cp.RetryAfter = wait
		return &cp
	case c.lastErr != nil:
		return c.lastErr
	}
	return &TokenError{RetryAfter: wait}
}

// renew requests a token and records the outcome. The caller holds c.sem.
func (c *tokenCache) renew(ctx context.Context) (string, error) {
	start := c.now()
	tok, err := c.fetch(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if err != nil && ctx.Err() != nil {
		return "", err // the caller gave up: that says nothing about the endpoint
	}
	c.health.Requests++
	c.health.LastAttempt = now
	if err == nil {
		var expiry time.Time
		switch {
		case tok.ExpiresIn > 0:
			expiry = start.Add(time.Duration(tok.ExpiresIn) * time.Second)
		case !tok.Expiry.IsZero():
			expiry = tok.Expiry
		}
		lifetime := expiry.Sub(start)
		if tok.AccessToken == "" || lifetime <= 0 {
			err = &TokenError{Status: http.StatusOK, Code: "invalid_token_response"}
		} else {
			c.tok = tok
			c.usableUntil = expiry.Add(-expiryMargin(lifetime))
			c.renewAt = expiry.Add(-c.policy.Lead(lifetime))
			if c.renewAt.After(c.usableUntil) {
				c.renewAt = c.usableUntil
			}
			c.nextTry, c.lastErr = time.Time{}, nil
			c.transition(now, Health{State: TokenOK})
			c.health.LastSuccess = now
			c.health.ConsecutiveFailures = 0
			return tok.AccessToken, nil
		}
	}
	c.health.Failures++
	c.health.ConsecutiveFailures++
	c.lastErr = err
	backoff := tokenBackoffBase << min(c.health.ConsecutiveFailures-1, 6)
	backoff = min(backoff, tokenBackoffMax)
	if _, valid := c.current(now); valid {
		backoff = min(backoff, c.usableUntil.Sub(now)/4)
	}
	// Equal jitter: at least half the wait, so retries stay spaced out.
	backoff = max(backoff/2+time.Duration(c.rand()*float64(backoff/2)), tokenBackoffFloor)
	c.nextTry = now.Add(backoff)
	c.transition(now, healthOf(err))
	return "", err
}

// healthOf classifies a failed token request.
func healthOf(err error) Health {
	var te *TokenError
	var ce *CredentialError
	switch {
	case errors.As(err, &te):
		h := Health{State: TokenRefused, Reason: te.Reason(), Code: te.Code, AADSTS: te.AADSTS, ClockSkew: te.ClockSkew()}
		if te.Temporary() {
			h.State = TokenUnavailable
		}
		return h
	case errors.As(err, &ce):
		return Health{State: CredentialUnusable, Reason: ce.What + " unusable"}
	default:
		return Health{State: CredentialUnusable, Reason: "token request could not be built"}
	}
}

// transition moves to the state of next, logging when the state (or the
// error code) changes, never on every call. Call with c.mu held.
func (c *tokenCache) transition(now time.Time, next Health) {
	prev := c.health
	changed := prev.State != next.State || prev.Code != next.Code || prev.AADSTS != next.AADSTS || prev.Reason != next.Reason
	c.health.State, c.health.Reason, c.health.Code, c.health.AADSTS = next.State, next.Reason, next.Code, next.AADSTS
	c.health.ClockSkew = next.ClockSkew
	if !changed {
		return
	}
	c.health.Since = now
	attrs := []any{"state", next.State}
	if next.Code != "" {
		attrs = append(attrs, "code", next.Code)
	}
	if next.AADSTS != "" {
		attrs = append(attrs, "aadsts", next.AADSTS)
	}
	if until, ok := c.validUntil(now); ok {
		attrs = append(attrs, "token_valid_until", until)
	}
	switch next.State {
	case TokenOK:
		c.log.Info("TechPass token endpoint issued a token again", append(attrs, "previous_state", prev.State, "failing_since", prev.Since)...)
	case TokenUnavailable:
		c.log.Warn("TechPass token endpoint unavailable; the current access token is used while it is valid, and the request is retried with backoff",
			append(attrs, "reason", next.Reason)...)
	case TokenRefused:
		if next.ClockSkew {
			c.log.Error("TechPass token endpoint finds the client assertion outside its valid time range: this host's clock is off; fix its time synchronisation",
				append(attrs, "reason", next.Reason, "clock_skew", true)...)
			break
		}
		c.log.Error("TechPass token endpoint refused the client credentials; the platform team must fix or rotate them",
			append(attrs, "reason", next.Reason)...)
	case CredentialUnusable:
		c.log.Error("TechPass client credential unusable; the platform team must fix the credential file",
			append(attrs, "reason", next.Reason, "err", c.lastErr)...)
	}
}

func (c *tokenCache) validUntil(now time.Time) (time.Time, bool) {
	if _, ok := c.current(now); ok {
		return c.usableUntil, true
	}
	return time.Time{}, false
}

// invalidate drops the cached token if it is still access, so that the next
// call fetches a new one (after the API answered 401).
func (c *tokenCache) invalidate(access string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tok != nil && c.tok.AccessToken == access {
		c.tok = nil
	}
}

// credentialsChanged forgets the backoff and makes the current token due
// for renewal, so new credentials are tried at the next use: a fix is
// picked up at once, and a broken rotation shows while the old token still
// serves.
func (c *tokenCache) credentialsChanged() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nextTry = time.Time{}
	if now := c.now(); c.tok != nil && now.Before(c.renewAt) {
		c.renewAt = now
	}
}

// KeepToken makes c, a client rebuilt for the same application as prev,
// take over prev's access token and token health: the token keeps serving
// until it expires or falls due for renewal, which c then does with its own
// credentials, keeping the token in use if that fails. It reports whether
// it did: a client of another application (token endpoint, client id, API
// URL or namespace differ) never gets prev's token. Call it before c is
// used; prev may go on serving calls in flight. To try c's credentials at
// once, as a rotation does, call CredentialsChanged next.
func (c *Client) KeepToken(prev *Client) bool {
	if prev == nil || prev == c {
		return false
	}
	a, b := c.cfg, prev.cfg
	if a.TokenURL != b.TokenURL || a.ClientID != b.ClientID || a.APIURL != b.APIURL || a.Namespace != b.Namespace {
		return false
	}
	c.tokens.adopt(prev.tokens)
	return true
}

// adopt takes over p's token, schedule and health.
func (c *tokenCache) adopt(p *tokenCache) {
	p.mu.Lock()
	tok, renewAt, usableUntil, nextTry, lastErr, health := p.tok, p.renewAt, p.usableUntil, p.nextTry, p.lastErr, p.health
	p.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tok, c.renewAt, c.usableUntil, c.nextTry, c.lastErr, c.health = tok, renewAt, usableUntil, nextTry, lastErr, health
}

// refresh requests a new token now, whatever the backoff, waiting for a
// renewal in progress. On failure the current token stays in use.
func (c *tokenCache) refresh(ctx context.Context) error {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-c.sem }()
	_, err := c.renew(ctx)
	return err
}

// snapshot returns the health as of now.
func (c *tokenCache) snapshot() Health {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	h := c.health
	h.TokenValidUntil, _ = c.validUntil(now)
	if now.Before(c.nextTry) {
		h.NextAttempt = c.nextTry
	}
	return h
}

// fetchToken returns the fetch function of the client-credentials grant:
// with a certificate client assertion, built anew (fresh jti, short expiry)
// at every fetch from the current certificate, or with the client secret,
// read anew at every fetch.
func fetchToken(cfg Config, hc *http.Client) func(ctx context.Context) (*oauth2.Token, error) {
	return func(ctx context.Context) (*oauth2.Token, error) {
		cc := clientcredentials.Config{
			ClientID:  cfg.ClientID,
			TokenURL:  cfg.TokenURL,
			Scopes:    []string{cfg.Scope()},
			AuthStyle: oauth2.AuthStyleInParams,
		}
		var cert *Certificate
		if cfg.ClientCertificate != nil {
			var err error
			if cert, err = cfg.ClientCertificate(); err != nil {
				return nil, &CredentialError{What: "client certificate", err: err}
			}
		}
		switch {
		case cert != nil:
			assertion, err := cert.BuildAssertion(cfg.AssertionAlg, cfg.ClientID, cfg.TokenURL, cfg.Now())
			if err != nil {
				return nil, &CredentialError{What: "client certificate", err: err}
			}
			cc.EndpointParams = url.Values{
				"client_assertion_type": {AssertionTypeJWTBearer},
				"client_assertion":      {assertion},
			}
		case cfg.ClientSecret != nil:
			secret, err := cfg.ClientSecret()
			if err != nil {
				return nil, &CredentialError{What: "client secret", err: err}
			}
			cc.ClientSecret = secret
		default:
			return nil, &CredentialError{What: "client certificate", err: errors.New("no certificate loaded")}
		}
		return requestToken(ctx, hc, cc)
	}
}

func requestToken(ctx context.Context, hc *http.Client, cc clientcredentials.Config) (*oauth2.Token, error) {
	tok, err := cc.Token(context.WithValue(ctx, oauth2.HTTPClient, hc))
	if err != nil {
		return nil, sanitizeTokenError(err)
	}
	return tok, nil
}

// sanitizeTokenError keeps the status and error code of a failed token
// request and drops everything else, which may echo request details.
func sanitizeTokenError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		te := &TokenError{Code: re.ErrorCode}
		if re.Response != nil {
			te.Status = re.Response.StatusCode
		}
		te.AADSTS = aadstsRE.FindString(re.ErrorDescription)
		return te
	}
	return &TokenError{err: err}
}
