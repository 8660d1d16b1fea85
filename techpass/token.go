package techpass

import (
	"context"
	"errors"
	"fmt"
	"net/http"
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
	err    error
}

func (e *TokenError) Error() string {
	switch {
	case e.Status == 0:
		return "token request failed: no answer from the token endpoint"
	case e.Code == "":
		return fmt.Sprintf("token request failed: HTTP %d", e.Status)
	case e.AADSTS != "":
		return fmt.Sprintf("token request failed: %s (%s, HTTP %d)", e.Code, e.AADSTS, e.Status)
	default:
		return fmt.Sprintf("token request failed: %s (HTTP %d)", e.Code, e.Status)
	}
}

// Unwrap returns the transport error when no answer came (for timeouts).
func (e *TokenError) Unwrap() error { return e.err }

// Temporary reports whether a retry may succeed without an operator's help.
func (e *TokenError) Temporary() bool {
	return e.Status == 0 || e.Status == http.StatusTooManyRequests || e.Status >= 500 || e.Code == "temporarily_unavailable"
}

var aadstsRE = regexp.MustCompile(`AADSTS\d{4,}`)

// tokenCache holds one tenant's access token in memory and renews it ahead
// of expiry. A renewal happens under the lock, so concurrent callers cause
// one token request (single flight).
type tokenCache struct {
	fetch func(ctx context.Context) (*oauth2.Token, error)
	now   func() time.Time

	mu      sync.Mutex
	tok     *oauth2.Token
	renewAt time.Time
}

// renewalLead is how long before expiry a token is renewed: a sixth of its
// lifetime, but at least a minute, and for tokens shorter than two minutes
// half their lifetime (so a short-lived token is still used for a while).
func renewalLead(lifetime time.Duration) time.Duration {
	return max(lifetime/6, min(time.Minute, lifetime/2))
}

// token returns a valid access token, renewing it when due. If a renewal
// fails while the current token is still valid, the current one is used.
func (c *tokenCache) token(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if c.tok != nil && now.Before(c.renewAt) {
		return c.tok.AccessToken, nil
	}
	tok, err := c.fetch(ctx)
	if err != nil {
		if c.tok != nil && now.Add(5*time.Second).Before(c.tok.Expiry) {
			return c.tok.AccessToken, nil
		}
		return "", err
	}
	lifetime := tok.Expiry.Sub(now)
	if tok.Expiry.IsZero() || lifetime <= 0 {
		return "", &TokenError{Status: http.StatusOK, Code: "invalid_token_response"}
	}
	c.tok = tok
	c.renewAt = tok.Expiry.Add(-renewalLead(lifetime))
	return tok.AccessToken, nil
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

// fetchWithSecret returns a fetch function for the client-credentials grant
// with a client secret, read anew at every fetch.
func fetchWithSecret(cfg Config, hc *http.Client) func(ctx context.Context) (*oauth2.Token, error) {
	return func(ctx context.Context) (*oauth2.Token, error) {
		secret, err := cfg.ClientSecret()
		if err != nil {
			return nil, fmt.Errorf("read client secret: %w", err)
		}
		cc := clientcredentials.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: secret,
			TokenURL:     cfg.TokenURL,
			Scopes:       []string{cfg.Scope()},
			AuthStyle:    oauth2.AuthStyleInParams,
		}
		tok, err := cc.Token(context.WithValue(ctx, oauth2.HTTPClient, hc))
		if err != nil {
			return nil, sanitizeTokenError(err)
		}
		return tok, nil
	}
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
