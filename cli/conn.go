package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/groupgate/groupgate/client"
)

// conn holds the flags every command shares and, once they are checked,
// the API client built from them.
type conn struct {
	env             *Env
	url, keyFile    string
	insecureHTTP    bool
	output          string
	tenant, project string
	scope           scope
	api             *client.ClientWithResponses
}

func (c *conn) bind(fs *flag.FlagSet, s scope) {
	c.scope = s
	fs.StringVar(&c.url, "url", "", "base URL of the gateway (default $GROUPGATE_URL, else "+DefaultURL+")")
	fs.StringVar(&c.keyFile, "key-file", "", "file holding the API key or JWT (default $GROUPGATE_KEY_FILE; else the key is $GROUPGATE_KEY)")
	fs.BoolVar(&c.insecureHTTP, "insecure-http", false, "allow sending the credential over plain http:// to a host other than this machine")
	fs.StringVar(&c.output, "o", "table", "output: table or json (the API's JSON)")
	switch s {
	case scopeProject:
		fs.StringVar(&c.tenant, "tenant", "", "tenant (default $GROUPGATE_TENANT)")
		fs.StringVar(&c.project, "project", "", "project (default $GROUPGATE_PROJECT)")
	case scopeTenant:
		fs.StringVar(&c.tenant, "tenant", "", "tenant (default $GROUPGATE_TENANT)")
	}
}

// exitError is a failure and the exit status it gives.
type exitError struct {
	code       int
	err        error
	status     int           // the HTTP status of a refused request, else 0
	retryAfter time.Duration // the refusal's Retry-After, if it had one
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func failf(code int, format string, a ...any) error {
	return &exitError{code: code, err: fmt.Errorf(format, a...)}
}

// usagef is a problem with the command line or the local setup; nothing
// was sent.
func usagef(format string, a ...any) error { return failf(ExitUsage, format, a...) }

func exitCode(err error) int {
	if e := (*exitError)(nil); errors.As(err, &e) {
		return e.code
	}
	return ExitError
}

// statusCode is the exit status of a request refused with an HTTP status.
func statusCode(status int) int {
	switch status {
	case http.StatusNotFound:
		return ExitNotFound
	case http.StatusUnauthorized, http.StatusForbidden:
		return ExitAuth
	case http.StatusConflict, http.StatusPreconditionFailed:
		return ExitConflict
	}
	return ExitError
}

// doer sends the client's requests and turns every answer but a 2xx with a
// JSON body into an *exitError, so that a command's only check is err.
type doer struct{ c *http.Client }

func (d doer) Do(req *http.Request) (*http.Response, error) {
	resp, err := d.c.Do(req)
	if err != nil {
		if errors.Is(req.Context().Err(), context.Canceled) {
			return nil, interrupted(req)
		}
		var ue *url.Error
		if errors.As(err, &ue) { // its message repeats the whole URL
			err = ue.Err
		}
		return nil, fmt.Errorf("request to %s failed: %w", req.URL.Host, err)
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	ok := resp.StatusCode >= 200 && resp.StatusCode <= 299
	if ok && (mt == "application/json" || strings.HasSuffix(mt, "+json")) {
		return resp, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if ok {
		return nil, failf(ExitError, "unexpected answer: %d %s", resp.StatusCode, clean(orDash(mt)))
	}
	return nil, refusal(resp, mt, body)
}

// interrupted is a request cut short by Ctrl-C: a write may have reached
// the server all the same.
func interrupted(req *http.Request) error {
	msg := "interrupted"
	if req.Method != http.MethodGet {
		msg += "; the request may have reached the server"
		if req.Header.Get("Idempotency-Key") != "" {
			msg += ": repeat the command with the same --idempotency-key to learn its outcome"
		} else {
			msg += ": look for its operation with 'groupgate queue' or 'groupgate groups get'"
		}
	}
	return failf(ExitInterrupted, "%s", msg)
}

// refusal describes an error status, with the problem the body holds.
func refusal(resp *http.Response, mt string, body []byte) error {
	e := &exitError{code: statusCode(resp.StatusCode), status: resp.StatusCode}
	var s string
	var p client.Problem
	if strings.HasSuffix(mt, "json") && json.Unmarshal(body, &p) == nil && p.Title != "" {
		s = fmt.Sprintf("%s (%d)", clean(p.Title), resp.StatusCode)
		if p.Detail != nil && *p.Detail != "" {
			s += ": " + clean(*p.Detail)
		}
	} else {
		s = fmt.Sprintf("the server answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
		if resp.StatusCode >= 300 && resp.StatusCode <= 399 {
			s += " (redirects are not followed: check --url)"
		}
	}
	if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && n >= 0 {
		e.retryAfter = time.Duration(n) * time.Second
		s += fmt.Sprintf(" (Retry-After: %d s)", n)
	}
	if p.Errors != nil {
		for _, fe := range *p.Errors {
			s += fmt.Sprintf("\n  %s: %s", clean(fe.Field), clean(fe.Message))
		}
	}
	e.err = errors.New(s)
	return e
}

// connect checks the shared flags and builds the API client with the
// caller's credential.
func (c *conn) connect() error {
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
	base := c.url
	if base == "" {
		base = c.env.Getenv("GROUPGATE_URL")
	}
	if base == "" {
		base = DefaultURL
	}
	// The URL is not echoed: a key pasted in the wrong place must not show.
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usagef("--url (or $GROUPGATE_URL): want http(s)://host[:port]")
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) && !c.insecureHTTP {
		return usagef("refusing to send the credential to another machine without TLS: use https://, or --insecure-http if you mean it")
	}
	key, err := c.key()
	if err != nil {
		return err
	}
	hc := *c.env.HTTPClient
	// A redirect, even to the same host, would carry the credential along,
	// perhaps from https to http.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.api, err = client.NewClientWithResponses(strings.TrimRight(base, "/"),
		client.WithHTTPClient(doer{&hc}),
		client.WithBearer(key),
		client.WithRequestEditorFn(func(_ context.Context, r *http.Request) error {
			r.Header.Set("User-Agent", "groupgate-cli")
			return nil
		}))
	return err
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// key reads the credential (see Key).
func (c *conn) key() (string, error) { return Key(c.env.Getenv, c.keyFile) }

// Key reads the credential as every command does: from keyFile if it is
// not empty, else from the file $GROUPGATE_KEY_FILE names, else from
// $GROUPGATE_KEY. A key file must be readable by its owner only, as ssh
// requires of private keys. Errors, with ExitUsage, name neither the
// credential nor the file (its name may be a key given by mistake).
func Key(getenv func(string) string, keyFile string) (string, error) {
	src, path := "--key-file", keyFile
	if path == "" {
		src, path = "$GROUPGATE_KEY_FILE", getenv("GROUPGATE_KEY_FILE")
	}
	if path != "" {
		key, err := readKeyFile(path)
		if err != nil {
			return "", usagef("%s: %w", src, err)
		}
		return key, nil
	}
	key := strings.TrimSpace(getenv("GROUPGATE_KEY"))
	if key == "" {
		return "", usagef("no credential: set GROUPGATE_KEY or use --key-file")
	}
	return key, checkKey(key)
}

func readKeyFile(path string) (string, error) {
	fi, err := os.Stat(path)
	if err == nil && fi.IsDir() {
		return "", errors.New("the key file is a directory")
	}
	if err == nil && fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("the key file may be read by others (mode %04o); refusing it: chmod 600 it", fi.Mode().Perm())
	}
	var b []byte
	if err == nil {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return "", fmt.Errorf("the key file: %w", err)
	}
	key := strings.TrimSpace(string(b))
	if key == "" {
		return "", errors.New("the key file is empty")
	}
	return key, checkKey(key)
}

func checkKey(key string) error {
	for _, r := range key {
		if r <= ' ' || r >= 0x7f {
			return usagef("the credential holds spaces, line breaks or other characters no key or JWT has")
		}
	}
	return nil
}

// show prints an answer v as JSON or as the table draws it. v is nil when
// the server answered a 2xx other than the documented one.
func show[T any](c *conn, resp client.Response, v *T, table func(io.Writer, *T)) error {
	if v == nil {
		return failf(ExitError, "unexpected answer: %d %s", resp.StatusCode(), clean(resp.ContentType()))
	}
	return c.print(resp.GetBody(), func(w io.Writer) { table(w, v) })
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
	if next != nil && *next != "" {
		fmt.Fprintf(c.env.Stderr, "(more: repeat with --cursor %s)\n", clean(*next))
	}
}

// row writes one table row; server-supplied text in it cannot move the
// cursor, colour the terminal or break the columns.
func row(w io.Writer, cells ...string) {
	for i, s := range cells {
		cells[i] = clean(s)
	}
	fmt.Fprintln(w, strings.Join(cells, "\t"))
}

var escape = regexp.MustCompile(`\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)?|.)?`)

// clean makes text from the server safe to print on a terminal line:
// escape sequences go, and other control characters (tabs and line breaks
// too) become spaces.
func clean(s string) string {
	s = escape.ReplaceAllString(s, "")
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
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
