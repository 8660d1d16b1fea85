package console

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/groupgate/groupgate/client"
)

// pageData is what every page template gets.
type pageData struct {
	Title  string
	Error  string
	Notice string
	// Me is the signed-in caller; nil on the sign-in page.
	Me *me
	// PollMS is how often live parts refresh, in milliseconds.
	PollMS int64
	Data   any
}

// me describes the signed-in caller: no secret, only who and the CSRF
// token of the session's forms.
type me struct {
	Actor, Role, Tenant, Project string
	CSRF                         string
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, page string, v *viewer, d pageData) {
	t, ok := c.pages[page]
	if !ok {
		http.Error(w, "no such page", http.StatusInternalServerError)
		return
	}
	if v != nil {
		d.Me = &me{Actor: v.p.Actor(), Role: string(v.p.Role), Tenant: v.p.Tenant, Project: v.p.Project, CSRF: v.session.CSRF}
	}
	d.PollMS = c.cfg.PollInterval.Milliseconds()
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", d); err != nil {
		c.cfg.Logger.Error("console: render", "page", page, "err", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

// renderPart renders one named part (a live fragment) without the layout.
func (c *Console) renderPart(w http.ResponseWriter, name string, data any) {
	var buf bytes.Buffer
	if err := c.pages["error"].ExecuteTemplate(&buf, name, data); err != nil {
		c.cfg.Logger.Error("console: render part", "part", name, "err", err)
		http.Error(w, "the part could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = buf.WriteTo(w)
}

// fail shows an API refusal (or any error) on the error page, with the
// API's status.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, v *viewer, err error) {
	status := http.StatusBadGateway
	var p *client.Problem
	if errors.As(err, &p) {
		status = int(p.Status)
	}
	c.render(w, r, status, "error", v, pageData{Title: "Not done", Error: errText(err)})
}

// errText is what a page says about err: the API's problem title and
// detail (which never hold secrets), with each invalid field.
func errText(err error) string {
	var p *client.Problem
	if !errors.As(err, &p) {
		return "The request failed: " + err.Error()
	}
	s := p.Error()
	if p.Errors != nil {
		for _, f := range *p.Errors {
			s += "; " + f.Field + ": " + f.Message
		}
	}
	return s
}

// result decodes a successful API answer into out (nil to ignore the
// body) or returns the API's problem.
func result(resp client.Response, err error, out any) error {
	if err != nil {
		return fmt.Errorf("API request: %w", err)
	}
	if resp.StatusCode() >= 300 {
		if p := client.ProblemOf(resp); p != nil {
			return p
		}
		return &client.Problem{Status: int32(resp.StatusCode()), Title: http.StatusText(resp.StatusCode())}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(resp.GetBody(), out); err != nil {
		return fmt.Errorf("decode API answer: %w", err)
	}
	return nil
}

// statusOf returns the HTTP status of an API problem, or 0.
func statusOf(err error) int {
	var p *client.Problem
	if errors.As(err, &p) {
		return int(p.Status)
	}
	return 0
}

// funcs are the templates' functions; now is the console's clock.
func funcs(now func() time.Time) template.FuncMap {
	return template.FuncMap{
		"path":  url.PathEscape,
		"query": queryString,
		"when": func(t any) string {
			var tt time.Time
			switch t := t.(type) {
			case time.Time:
				tt = t
			case *time.Time:
				if t != nil {
					tt = *t
				}
			}
			if tt.IsZero() {
				return "—"
			}
			return tt.UTC().Format("2006-01-02 15:04:05Z")
		},
		"age": func(t *time.Time) string {
			if t == nil || t.IsZero() {
				return "—"
			}
			return ageText(now().Sub(*t))
		},
		"queueLimit": func() int { return queueListLimit },
		"str": func(s *string) string {
			if s == nil {
				return ""
			}
			return *s
		},
		"num": func(n *int32) string {
			if n == nil {
				return "—"
			}
			return fmt.Sprint(*n)
		},
		"join": func(v any) string {
			switch v := v.(type) {
			case []client.Scope:
				s := make([]string, len(v))
				for i, x := range v {
					s[i] = string(x)
				}
				return strings.Join(s, ", ")
			case []string:
				return strings.Join(v, ", ")
			}
			return ""
		},
		"final": func(s client.OperationState) bool {
			return s == "succeeded" || s == "failed" || s == "cancelled"
		},
	}
}

// ageText is a duration rounded for reading: 3d, 5h, 12m, 40s.
func ageText(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// queryString encodes pairs of names and values, leaving out empty values,
// as "?a=1&b=2", or "" when none is left.
func queryString(kv ...string) string {
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			q.Set(kv[i], kv[i+1])
		}
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}
