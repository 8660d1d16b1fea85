package console

import (
	"context"
	"crypto/subtle"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/groupgate/groupgate/client"
	"github.com/groupgate/groupgate/tenants"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// Authenticator checks API keys: the API's own (tenants.Authenticator).
type Authenticator interface {
	// Authenticate checks a presented key, at sign-in.
	Authenticate(ctx context.Context, key string) (tenants.Principal, error)
	// Resume checks, by its id, the key a session signed in with, at every
	// request, and records its use. An error that wraps neither
	// tenants.ErrUnauthenticated nor tenants.ErrDisabled means the check
	// could not be made (the session is kept).
	Resume(ctx context.Context, keyID string) (tenants.Principal, error)
	// Peek is Resume without recording a use, for the page's own polls.
	Peek(ctx context.Context, keyID string) (tenants.Principal, error)
}

// Pending enumerates the operations waiting in a tenant's queue.
type Pending interface {
	PendingIDs(ctx context.Context, tenant, project string, limit int) ([]string, error)
}

// Config holds a Console's dependencies.
type Config struct {
	// API serves the API's requests; the console sends it every read and
	// write, in process, as the session's principal (see PrincipalFrom).
	API  http.Handler
	Auth Authenticator
	// Pending lists queued operations' ids; nil shows no queue list. The
	// console only asks it about a queue after the API let the caller read
	// that queue, and shows each operation only as the API returns it.
	Pending Pending
	// CredentialAges returns when each TechPass credential of a tenant last
	// changed, by the credential's name; nil shows no ages. The console only
	// asks about a tenant the API let the caller read.
	CredentialAges func(tenant string) map[string]time.Time
	// Sessions defaults to NewMemorySessions().
	Sessions Sessions
	// IdleTimeout ends a session without activity; default 15 minutes.
	IdleTimeout time.Duration
	// MaxLifetime ends a session however active; default 8 hours.
	MaxLifetime time.Duration
	// Secure marks cookies Secure and gives them the __Host- prefix. Set it
	// whenever browsers reach the console over HTTPS, including through a
	// TLS-terminating proxy; only a console browsers reach over plain HTTP
	// (the local demo) goes without.
	Secure bool
	// PollInterval is how often pages refresh their live parts; default 2s.
	PollInterval time.Duration
	Now          func() time.Time
	Logger       *slog.Logger
}

// Console serves /console. Create with New.
type Console struct {
	cfg   Config
	mux   *http.ServeMux
	pages map[string]*template.Template
	api   *client.ClientWithResponses
	// failures limits failed sign-ins, by client address and by key id.
	failures *failureLimiter
	// issued holds newly issued keys until their page shows them.
	issued issuedKeys
}

// Prefix is where the console is served.
const Prefix = "/console"

// contentSecurityPolicy allows only the console's own scripts, styles and
// images: no inline script or style.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// New returns the console over cfg.
func New(cfg Config) (*Console, error) {
	if cfg.API == nil || cfg.Auth == nil {
		return nil, errors.New("console: API and Auth are required")
	}
	if cfg.Sessions == nil {
		cfg.Sessions = NewMemorySessions()
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 15 * time.Minute
	}
	if cfg.MaxLifetime <= 0 {
		cfg.MaxLifetime = 8 * time.Hour
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 2 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	// The host is never dialled: the transport serves every request in
	// process. The Authorization header only satisfies the API's bearer
	// check; the principal travels in the context.
	api, err := client.NewClientWithResponses("http://console.invalid",
		client.WithHTTPClient(&http.Client{Transport: inProcess{cfg.API}}),
		client.WithRequestEditorFn(func(_ context.Context, req *http.Request) error {
			req.Header.Set("Authorization", "Bearer console-session")
			return nil
		}))
	if err != nil {
		return nil, fmt.Errorf("console: API client: %w", err)
	}
	c := &Console{cfg: cfg, api: api, mux: http.NewServeMux(), failures: newFailureLimiter()}
	if c.pages, err = parsePages(funcs(cfg.Now)); err != nil {
		return nil, err
	}
	c.routes()
	return c, nil
}

// parsePages parses each page template with the layout and fragments.
func parsePages(funcs template.FuncMap) (map[string]*template.Template, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" || base == "parts" {
			continue
		}
		t, err := template.New(base).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/parts.html", n)
		if err != nil {
			return nil, fmt.Errorf("console: parse %s: %w", n, err)
		}
		pages[base] = t
	}
	return pages, nil
}

// ServeHTTP implements http.Handler.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	// same-origin, not no-referrer: with no-referrer browsers send
	// "Origin: null" on the console's own form posts, which sameOrigin
	// would refuse.
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	if !strings.HasPrefix(r.URL.Path, Prefix+"/assets/") {
		h.Set("Cache-Control", "no-store")
	}
	// The API's middleware gave this request its id before the console got
	// it; the console's API requests for it carry the same id.
	if id := h.Get("X-Request-Id"); id != "" {
		r = r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id))
	}
	c.mux.ServeHTTP(w, r)
}

// Run drops expired sessions and ended sign-in windows every minute until
// ctx ends.
func (c *Console) Run(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.Sweep()
		}
	}
}

// Sweep drops expired sessions and ended sign-in windows now.
func (c *Console) Sweep() {
	now := c.cfg.Now()
	c.cfg.Sessions.Sweep(func(s Session) bool { return c.expired(s, now) })
	c.failures.sweep(now)
	c.issued.sweep(now)
}

// Cookie names: the session's and the sign-in form's.
const (
	sessionCookie = "gg"
	signinCookie  = "gg-signin"
)

// cookieName is the name a cookie is sent under: with the __Host- prefix,
// which binds it to this host over HTTPS, unless cookies are not Secure
// (plain HTTP cannot use the prefix).
func (c *Console) cookieName(base string) string {
	if c.cfg.Secure {
		return "__Host-" + base
	}
	return base
}

func (c *Console) setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: c.cookieName(name), Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: c.cfg.Secure, SameSite: http.SameSiteStrictMode,
	})
}

// viewer is the signed-in caller of one request.
type viewer struct {
	id      string
	session Session
	p       tenants.Principal
}

// ctx returns a context for API requests as the viewer, on behalf of the
// page request r.
func (v *viewer) ctx(r *http.Request) context.Context {
	id, _ := r.Context().Value(requestIDKey{}).(string)
	return context.WithValue(r.Context(), callerKey{}, caller{p: v.p, requestID: id})
}

// expired reports whether s has ended at now.
func (c *Console) expired(s Session, now time.Time) bool {
	return now.Sub(s.LastSeen) > c.cfg.IdleTimeout || now.Sub(s.Created) > c.cfg.MaxLifetime
}

// authed wraps a handler that needs a session. It resumes the session's
// key against the API's authentication snapshot, so a revoked or expired
// key or a disabled tenant ends the session here. Changing requests (any
// method but GET) must carry the session's CSRF token. Background requests
// (poll) do not extend the idle period.
func (c *Console) authed(poll bool, next func(http.ResponseWriter, *http.Request, *viewer)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		now := c.cfg.Now()
		v, reason := c.viewer(r, now, poll)
		if reason == unavailable {
			if poll {
				http.Error(w, "the session could not be checked", http.StatusServiceUnavailable)
				return
			}
			c.render(w, r, http.StatusServiceUnavailable, "error", nil, pageData{Title: "Unavailable",
				Error: "Your session could not be checked just now. Try again in a moment."})
			return
		}
		if v == nil {
			if reason != "" { // only a cookie that was sent is cleared
				c.setCookie(w, sessionCookie, "", -1)
			}
			if poll {
				w.Header().Set("X-Console-Signin", Prefix+"/signin?ended="+reason)
				http.Error(w, "session ended", http.StatusUnauthorized)
				return
			}
			if r.Method != http.MethodGet {
				c.render(w, r, http.StatusForbidden, "error", nil, pageData{Title: "Refused",
					Error: "This request came without a valid session and was refused. Sign in and try again."})
				return
			}
			http.Redirect(w, r, Prefix+"/signin?ended="+reason, http.StatusSeeOther)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if !c.sameOrigin(r) || !tokenEqual(r.PostFormValue("csrf"), v.session.CSRF) {
				c.cfg.Logger.Warn("console: refused a changing request without a valid CSRF token", "key_id", v.p.KeyID, "path", r.URL.Path)
				c.render(w, r, http.StatusForbidden, "error", v, pageData{Title: "Refused",
					Error: "This form did not come from this console (its CSRF token is missing or wrong) and was refused."})
				return
			}
		}
		if !poll {
			c.cfg.Sessions.Touch(v.id, now)
		}
		next(w, r, v)
	}
}

// unavailable is viewer's reason when the session could not be checked.
const unavailable = "unavailable"

// viewer returns the request's live session and principal, or nil and why
// not ("" when there was no session; unavailable when the key could not be
// checked, and the session is kept). A poll does not record a use of the
// key.
func (c *Console) viewer(r *http.Request, now time.Time, poll bool) (*viewer, string) {
	ck, err := r.Cookie(c.cookieName(sessionCookie))
	if err != nil || ck.Value == "" {
		return nil, ""
	}
	s, ok := c.cfg.Sessions.Get(ck.Value)
	if !ok {
		return nil, "expired"
	}
	if c.expired(s, now) {
		c.cfg.Sessions.Delete(ck.Value)
		return nil, "expired"
	}
	resume := c.cfg.Auth.Resume
	if poll {
		resume = c.cfg.Auth.Peek
	}
	p, err := resume(r.Context(), s.KeyID)
	if err != nil && !errors.Is(err, tenants.ErrUnauthenticated) && !errors.Is(err, tenants.ErrDisabled) {
		c.cfg.Logger.Warn("console: session not checked", "key_id", s.KeyID, "err", err)
		return nil, unavailable
	}
	if err != nil {
		c.cfg.Sessions.Delete(ck.Value)
		c.cfg.Logger.Info("console: session ended", "key_id", s.KeyID, "reason", err)
		return nil, "revoked"
	}
	return &viewer{id: ck.Value, session: s, p: p}, ""
}

// sameOrigin refuses a request whose Origin (sent by browsers on POST) is
// another origin's, or "null" (an opaque origin). The CSRF token is the
// defence; this is a second one.
func (c *Console) sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

func tokenEqual(got, want string) bool {
	return got != "" && want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
