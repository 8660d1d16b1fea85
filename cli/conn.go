package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/groupgate/groupgate/client"
)

// conn holds the flags every command shares and builds the API client from
// them.
type conn struct {
	env             *Env
	url, keyFile    string
	output          string
	tenant, project string
	scope           scope
	doer            *headerDoer
}

// headerDoer sends requests with the Env's client and keeps the
// Retry-After of the last answer, which the generated client does not
// expose for every status. A command sends one request at a time.
type headerDoer struct {
	c          *http.Client
	retryAfter string
}

func (d *headerDoer) Do(req *http.Request) (*http.Response, error) {
	resp, err := d.c.Do(req)
	d.retryAfter = ""
	if resp != nil {
		d.retryAfter = resp.Header.Get("Retry-After")
	}
	return resp, err
}

func (c *conn) bind(fs *flag.FlagSet, s scope) {
	c.scope = s
	fs.StringVar(&c.url, "url", "", "base URL of the gateway (default $GROUPGATE_URL, else "+DefaultURL+")")
	fs.StringVar(&c.keyFile, "key-file", "", "file holding the API key or JWT (default $GROUPGATE_KEY_FILE; else the key is $GROUPGATE_KEY)")
	fs.StringVar(&c.output, "o", "table", "output: table or json (the API's JSON)")
	switch s {
	case scopeProject:
		fs.StringVar(&c.tenant, "tenant", "", "tenant (default $GROUPGATE_TENANT)")
		fs.StringVar(&c.project, "project", "", "project (default $GROUPGATE_PROJECT)")
	case scopeTenant:
		fs.StringVar(&c.tenant, "tenant", "", "tenant (default $GROUPGATE_TENANT)")
	}
}

// usageError is a problem with the command line or the local setup; nothing
// was sent.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

// apiError is a request the gateway answered with an error status.
type apiError struct {
	status     int
	problem    *client.Problem
	retryAfter string // seconds, with a 429 or 503
}

func (e *apiError) Error() string {
	if e.problem == nil {
		return fmt.Sprintf("the server answered %d %s", e.status, http.StatusText(e.status))
	}
	p := e.problem
	s := fmt.Sprintf("%s (%d)", p.Title, e.status)
	if p.Detail != nil && *p.Detail != "" {
		s += ": " + *p.Detail
	}
	if e.retryAfter != "" {
		s += fmt.Sprintf(" (Retry-After: %s s)", e.retryAfter)
	}
	if p.Errors != nil {
		for _, fe := range *p.Errors {
			s += fmt.Sprintf("\n  %s: %s", fe.Field, fe.Message)
		}
	}
	return s
}

// opError is an operation that ended failed or cancelled.
type opError struct{ msg string }

func (e *opError) Error() string { return e.msg }

// timeoutError is a wait that ran out of time.
type timeoutError struct{ msg string }

func (e *timeoutError) Error() string { return e.msg }

func exitCode(err error) int {
	var (
		ue *usageError
		ae *apiError
		oe *opError
		te *timeoutError
	)
	switch {
	case errors.As(err, &ue):
		return ExitUsage
	case errors.As(err, &oe):
		return ExitOpFailed
	case errors.As(err, &te):
		return ExitTimeout
	case errors.As(err, &ae):
		switch ae.status {
		case http.StatusNotFound:
			return ExitNotFound
		case http.StatusUnauthorized, http.StatusForbidden:
			return ExitAuth
		case http.StatusConflict, http.StatusPreconditionFailed:
			return ExitConflict
		}
	}
	return ExitError
}

// validate checks the shared flags once they are parsed.
func (c *conn) validate() error {
	switch c.output {
	case "table", "json":
	default:
		return usagef("-o %q: want table or json", c.output)
	}
	if c.scope == scopeProject || c.scope == scopeTenant {
		if c.tenant == "" {
			c.tenant = c.env.Getenv("GROUPGATE_TENANT")
		}
		if c.tenant == "" {
			return usagef("a tenant is needed: --tenant or $GROUPGATE_TENANT")
		}
	}
	if c.scope == scopeProject {
		if c.project == "" {
			c.project = c.env.Getenv("GROUPGATE_PROJECT")
		}
		if c.project == "" {
			return usagef("a project is needed: --project or $GROUPGATE_PROJECT")
		}
	}
	return nil
}

// api returns a client for the gateway with the caller's credential.
func (c *conn) api() (*client.ClientWithResponses, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	base := c.url
	if base == "" {
		base = c.env.Getenv("GROUPGATE_URL")
	}
	if base == "" {
		base = DefaultURL
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usagef("--url %q: want http(s)://host[:port]", base)
	}
	key, err := c.key()
	if err != nil {
		return nil, err
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		fmt.Fprintf(c.env.Stderr, "groupgate: warning: sending the credential to %s without TLS\n", u.Host)
	}
	c.doer = &headerDoer{c: c.env.HTTPClient}
	return client.NewClientWithResponses(strings.TrimRight(base, "/"),
		client.WithHTTPClient(c.doer),
		client.WithBearer(key),
		client.WithRequestEditorFn(func(_ context.Context, r *http.Request) error {
			r.Header.Set("User-Agent", "groupgate-cli")
			return nil
		}))
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// key reads the credential: from the key file if one is named, else from
// GROUPGATE_KEY. Its value never appears in an error.
func (c *conn) key() (string, error) {
	path := c.keyFile
	if path == "" {
		path = c.env.Getenv("GROUPGATE_KEY_FILE")
	}
	var key string
	if path != "" {
		fi, err := os.Stat(path)
		if err != nil {
			return "", usagef("key file: %v", err)
		}
		if fi.IsDir() {
			return "", usagef("key file %s is a directory", path)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			return "", usagef("key file %s may be read by others (mode %04o); refusing it: chmod 600 %s", path, perm, path)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return "", usagef("key file: %v", err)
		}
		key = strings.TrimSpace(string(b))
		if key == "" {
			return "", usagef("key file %s is empty", path)
		}
	} else {
		key = strings.TrimSpace(c.env.Getenv("GROUPGATE_KEY"))
		if key == "" {
			return "", usagef("no credential: set GROUPGATE_KEY or use --key-file")
		}
	}
	for _, r := range key {
		if r <= ' ' || r >= 0x7f {
			return "", usagef("the credential holds spaces, line breaks or other characters no key or JWT has")
		}
	}
	return key, nil
}

// check turns a failed request or an error status into an error.
func (c *conn) check(resp client.Response, err error) error {
	if err != nil {
		return fmt.Errorf("request failed: %w", err)
	}
	if s := resp.StatusCode(); s < 200 || s > 299 {
		e := &apiError{status: s, problem: client.ProblemOf(resp)}
		if c.doer != nil {
			e.retryAfter = c.doer.retryAfter
		}
		return e
	}
	return nil
}

// print writes a result: the API's JSON (indented) with -o json, else the
// table that table draws.
func (c *conn) print(body []byte, table func(w io.Writer)) error {
	if c.output == "json" {
		var buf bytes.Buffer
		body = bytes.TrimSpace(body)
		if err := json.Indent(&buf, body, "", "  "); err != nil {
			buf.Reset()
			buf.Write(body)
		}
		buf.WriteByte('\n')
		_, err := c.env.Stdout.Write(buf.Bytes())
		return err
	}
	tw := tabwriter.NewWriter(c.env.Stdout, 0, 4, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

// more tells how to get the next page of a list, on stderr so that the
// table stays clean for pipes.
func (c *conn) more(next *string) {
	if next != nil && *next != "" && c.output == "table" {
		fmt.Fprintf(c.env.Stderr, "(more: repeat with --cursor %s)\n", *next)
	}
}

func row(w io.Writer, cells ...string) {
	fmt.Fprintln(w, strings.Join(cells, "\t"))
}

func str(s *string) string {
	if s == nil || *s == "" {
		return "-"
	}
	return *s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func tm(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func num[T ~int32 | ~int](n *T) string {
	if n == nil {
		return "-"
	}
	return fmt.Sprint(*n)
}

func ptr[T any](v T) *T { return &v }

// nonEmpty returns a pointer to s, or nil when s is empty (an absent query
// parameter).
func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// positional checks the number of positional arguments.
func positional(args []string, min, max int, synopsis string) error {
	if len(args) < min || (max >= 0 && len(args) > max) {
		return usagef("want %s, got %d argument(s)", synopsis, len(args))
	}
	return nil
}
