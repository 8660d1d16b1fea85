package console

import (
	"net/http"
	"strings"
)

// signinPage shows the sign-in form, with a token bound to a short-lived
// cookie so that another site cannot sign a browser in with its own key.
func (c *Console) signinPage(w http.ResponseWriter, r *http.Request) {
	if v, _ := c.viewer(r, c.cfg.Now()); v != nil {
		http.Redirect(w, r, Prefix+"/", http.StatusSeeOther)
		return
	}
	c.showSignin(w, r, http.StatusOK, "")
}

func (c *Console) showSignin(w http.ResponseWriter, r *http.Request, status int, problem string) {
	token, err := randomToken()
	if err != nil {
		http.Error(w, "no randomness", http.StatusInternalServerError)
		return
	}
	c.setCookie(w, c.signinCookie(), token, 900)
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
// id it presented before is dropped (no session fixation).
func (c *Console) signin(w http.ResponseWriter, r *http.Request) {
	pre, err := r.Cookie(c.signinCookie())
	if err != nil || !c.sameOrigin(r) || !tokenEqual(r.PostFormValue("token"), pre.Value) {
		c.showSignin(w, r, http.StatusForbidden, "The sign-in form expired or did not come from this console. Try again.")
		return
	}
	if old, err := r.Cookie(c.sessionCookie()); err == nil {
		c.cfg.Sessions.Delete(old.Value)
	}
	p, err := c.cfg.Auth.Authenticate(r.Context(), strings.TrimSpace(r.PostFormValue("key")))
	if err != nil || p.KeyID == "" {
		c.cfg.Logger.Info("console: sign-in refused", "reason", err)
		c.setCookie(w, c.sessionCookie(), "", -1)
		c.showSignin(w, r, http.StatusUnauthorized, "That key was not accepted.")
		return
	}
	csrf, err := randomToken()
	if err != nil {
		http.Error(w, "no randomness", http.StatusInternalServerError)
		return
	}
	now := c.cfg.Now()
	id, err := c.cfg.Sessions.Create(Session{KeyID: p.KeyID, CSRF: csrf, Created: now, LastSeen: now})
	if err != nil {
		http.Error(w, "no session", http.StatusInternalServerError)
		return
	}
	c.setCookie(w, c.signinCookie(), "", -1)
	c.setCookie(w, c.sessionCookie(), id, 0)
	c.cfg.Logger.Info("console: signed in", "key_id", p.KeyID, "role", p.Role, "tenant", p.Tenant, "project", p.Project)
	http.Redirect(w, r, Prefix+"/", http.StatusSeeOther)
}

func (c *Console) signout(w http.ResponseWriter, r *http.Request, v *viewer) {
	c.cfg.Sessions.Delete(v.id)
	c.setCookie(w, c.sessionCookie(), "", -1)
	c.cfg.Logger.Info("console: signed out", "key_id", v.p.KeyID)
	http.Redirect(w, r, Prefix+"/signin?ended=signed-out", http.StatusSeeOther)
}

// signinView is the sign-in page: its form token and the session limits.
type signinView struct{ Token, Idle, Max string }
