package console

import (
	"net"
	"net/http"
	"strings"

	"github.com/groupgate/groupgate/tenants"
)

// signinPage shows the sign-in form, with a token bound to a short-lived
// cookie so that another site cannot sign a browser in with its own key.
// It shows it even to a browser with a session: signing in replaces it.
func (c *Console) signinPage(w http.ResponseWriter, r *http.Request) {
	c.showSignin(w, r, http.StatusOK, "")
}

func (c *Console) showSignin(w http.ResponseWriter, r *http.Request, status int, problem string) {
	token, err := randomToken()
	if err != nil {
		http.Error(w, "no randomness", http.StatusInternalServerError)
		return
	}
	c.setCookie(w, signinCookie, token, 900)
	notice := map[string]string{
		"expired":    "Your session expired. Sign in again.",
		"revoked":    "Your session ended: its key was revoked or expired, or its tenant or project was disabled.",
		"signed-out": "You signed out.",
	}[r.URL.Query().Get("ended")]
	c.render(w, r, status, "signin", nil, pageData{Title: "Sign in", Error: problem, Notice: notice, Data: signinView{
		Token: token, Idle: c.cfg.IdleTimeout.String(), Max: c.cfg.MaxLifetime.String(),
	}})
}

// signin exchanges an API key for a session. The key is checked once and
// only its id is kept; the browser gets a new random session id, and any
// id it presented before is dropped (no session fixation). Failed attempts
// are limited per client address and per key id.
func (c *Console) signin(w http.ResponseWriter, r *http.Request) {
	pre, err := r.Cookie(c.cookieName(signinCookie))
	if err != nil || !c.sameOrigin(r) || !tokenEqual(r.PostFormValue("token"), pre.Value) {
		c.showSignin(w, r, http.StatusForbidden, "The sign-in form expired or did not come from this console. Try again.")
		return
	}
	if old, err := r.Cookie(c.cookieName(sessionCookie)); err == nil {
		c.cfg.Sessions.Delete(old.Value)
		c.setCookie(w, sessionCookie, "", -1)
	}
	now := c.cfg.Now()
	key := strings.TrimSpace(r.PostFormValue("key"))
	// Only a key of the shape groupgate issues is checked: the console
	// signs in with API keys, not tokens.
	keyID := tenants.KeyID(key)
	ip := clientAddress(r)
	if c.failures.blocked("ip:"+ip, signinFailuresPerIP, now) || (keyID != "" && c.failures.blocked("key:"+keyID, signinFailuresByKey, now)) {
		c.showSignin(w, r, http.StatusTooManyRequests, "Too many failed sign-ins. Wait a minute and try again.")
		return
	}
	var p tenants.Principal
	if keyID != "" {
		p, err = c.cfg.Auth.Authenticate(r.Context(), key)
	}
	if keyID == "" || err != nil || p.KeyID == "" {
		n := c.failures.fail("ip:"+ip, now)
		if keyID != "" {
			n = max(n, c.failures.fail("key:"+keyID, now))
		}
		// One line per address and key at the start of a window, and one
		// when a limit is reached; the rest at debug.
		level := "debug"
		if n == 1 || n == signinFailuresByKey || n == signinFailuresPerIP {
			level = "info"
		}
		msg := "console: sign-in refused"
		if keyID == "" {
			msg = "console: sign-in refused: not an API key"
		}
		if level == "info" {
			c.cfg.Logger.Info(msg, "client", ip, "key_id", keyID, "failures", n, "reason", err)
		} else {
			c.cfg.Logger.Debug(msg, "client", ip, "key_id", keyID, "failures", n, "reason", err)
		}
		c.showSignin(w, r, http.StatusUnauthorized, "That key was not accepted.")
		return
	}
	csrf, err := randomToken()
	if err != nil {
		http.Error(w, "no randomness", http.StatusInternalServerError)
		return
	}
	id, err := c.cfg.Sessions.Create(Session{KeyID: p.KeyID, CSRF: csrf, Created: now, LastSeen: now})
	if err != nil {
		http.Error(w, "no session", http.StatusInternalServerError)
		return
	}
	c.setCookie(w, signinCookie, "", -1)
	c.setCookie(w, sessionCookie, id, 0)
	c.cfg.Logger.Info("console: signed in", "key_id", p.KeyID, "role", p.Role, "tenant", p.Tenant, "project", p.Project)
	http.Redirect(w, r, Prefix+"/", http.StatusSeeOther)
}

// clientAddress is the address the request came from: behind a proxy, the
// proxy's (so the per-address limit is then shared; the per-key one still
// holds).
func clientAddress(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (c *Console) signout(w http.ResponseWriter, r *http.Request, v *viewer) {
	c.cfg.Sessions.Delete(v.id)
	c.setCookie(w, sessionCookie, "", -1)
	c.cfg.Logger.Info("console: signed out", "key_id", v.p.KeyID)
	http.Redirect(w, r, Prefix+"/signin?ended=signed-out", http.StatusSeeOther)
}

// signinView is the sign-in page: its form token and the session limits.
type signinView struct{ Token, Idle, Max string }
