package techpass

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Pacer spaces requests to the Automation API; see pacing.Gate. Acquire
// blocks until a request may start; release is called when it is done.
//
// A Pacer that also implements Holder is told of every Retry-After the API
// gives, so that no other request of the tenant starts before it.
type Pacer interface {
	Acquire(ctx context.Context) (release func(), err error)
}

// Holder is implemented by a Pacer that can hold every request back until a
// time, as pacing.Gate does.
type Holder interface {
	Hold(until time.Time)
}

// Starter is implemented by a Pacer that wants to know when a request was
// really sent: its headers written, after any connection set-up or TLS
// handshake that followed Acquire. The next request is then spaced from that
// moment, so the upstream never measures a shorter gap.
type Starter interface {
	Started(at time.Time)
}

// DefaultThrottleWait is how long the client waits after a 429 that gave no
// Retry-After.
const DefaultThrottleWait = time.Second

// Config describes one tenant's TechPass access. Every field is required
// except those marked optional; at least one of ClientSecret and
// ClientCertificate must be set.
type Config struct {
	// Namespace is the tenant's TechPass namespace, e.g. SHIP.
	Namespace string
	// APIURL is the Automation API base URL, e.g. https://api.techpass.gov.sg.
	APIURL string
	// TokenURL is the OAuth2 token endpoint,
	// https://login.microsoftonline.com/{directoryID}/oauth2/v2.0/token.
	TokenURL string
	// ClientID is the application (client) id registered for the namespace.
	ClientID string
	// ClientSecret returns the current client secret, for the secret flow.
	ClientSecret Secret
	// ClientCertificate returns the current client certificate, for the
	// certificate client assertion flow (the one TechPass recommends). When
	// both are set it is asked first at each token request, and a nil
	// certificate with a nil error means "use the secret": so a credential
	// rotated from one kind to the other is used without a new client.
	ClientCertificate CertificateSource
	// AssertionAlg signs client assertions: AlgRS256 (the default when
	// empty) or AlgPS256. Optional.
	AssertionAlg string
	// APIKey returns the current x-api-key value.
	APIKey Secret
	// Renewal says when tokens are renewed; optional, the zero value uses
	// the defaults.
	Renewal RenewalPolicy
	// Pacer spaces every Automation API request; nil means unpaced, which
	// only tests of this package should use. Optional.
	Pacer Pacer
	// HTTPClient defaults to a client with a 30 s timeout. Optional.
	HTTPClient *http.Client
	// Now defaults to time.Now. Optional.
	Now func() time.Time
	// Logger receives token lifecycle events (state changes only, never a
	// credential) and the trace ids of TechPass's error answers. Optional:
	// nil discards.
	Logger *slog.Logger
	// Routes is the route table, as ResolveRoutes returns it; nil means
	// Routes(). Optional.
	Routes []Route
	// MembersSource says how ListMembers reads a group's members:
	// MembersFromGetGroup (the default when empty) or MembersFromListRoute.
	// Optional.
	MembersSource string
	// MemberPageSize, when positive, pages Get Group's member list with the
	// route's page and pageSize parameters; zero asks for the full list in
	// one request (Get Group's default). Optional.
	MemberPageSize int
	// Observe, if set, is told of every Automation API exchange: its route,
	// its HTTP status (0 when no answer came) and how long it took. For
	// metrics; it must not block.
	Observe func(route RouteName, status int, took time.Duration)
}

// Where ListMembers reads members from.
const (
	// MembersFromGetGroup reads them, with the owners, through Get Group
	// (published).
	MembersFromGetGroup = "getGroup"
	// MembersFromListRoute reads them through the list-members route
	// (assumed), without owners.
	MembersFromListRoute = "listMembers"
)

// Scope returns the OAuth2 scope for the Automation API: its base URL
// followed by /.default.
func (c Config) Scope() string { return strings.TrimRight(c.APIURL, "/") + "/.default" }

// TokenURL returns the Azure AD v2 token endpoint of a directory under
// loginBase (https://login.microsoftonline.com unless overridden).
func TokenURL(loginBase, directoryID string) string {
	return strings.TrimRight(loginBase, "/") + "/" + directoryID + "/oauth2/v2.0/token"
}

// ErrInvalidArgument is returned (wrapped), before any request is sent, when
// a method is given an id that cannot be a path segment: empty, "." or "..".
// It is not temporary.
var ErrInvalidArgument = errors.New("invalid argument")

// Error is a sanitized Automation API failure: the status, the Retry-After
// the API asked for, and TechPass's short reason, code and trace id.
type Error struct {
	Route      RouteName
	Status     int
	RetryAfter time.Duration
	// Message is the API's own short reason, sanitized; may be empty.
	Message string
	// Code is TechPass's error code ("14014"), digits only; may be empty.
	Code string
	// TraceID identifies the request for TechPass support: at most 64
	// characters of [A-Za-z0-9._:-]; may be empty.
	TraceID string
}

// Error returns the route, the status, the sanitized message, code and
// trace id.
func (e *Error) Error() string {
	s := fmt.Sprintf("techpass %s: HTTP %d", e.Route, e.Status)
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Code != "" {
		s += " (code " + e.Code + ")"
	}
	if e.TraceID != "" {
		s += " (traceId " + e.TraceID + ")"
	}
	return s
}

// Client calls one tenant's Automation API. It is safe for concurrent use,
// though the Pacer makes calls take turns.
type Client struct {
	cfg    Config
	routes []Route
	log    *slog.Logger
	http   *http.Client
	tokens *tokenCache
	pacer  Pacer
}

type noPacer struct{}

func (noPacer) Acquire(context.Context) (func(), error) { return func() {}, nil }

// New returns a client for cfg.
func New(cfg Config) (*Client, error) {
	var missing []string
	for name, v := range map[string]string{"namespace": cfg.Namespace, "API URL": cfg.APIURL, "token URL": cfg.TokenURL, "client id": cfg.ClientID} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if cfg.ClientSecret == nil && cfg.ClientCertificate == nil {
		missing = append(missing, "client secret or certificate")
	}
	if cfg.APIKey == nil {
		missing = append(missing, "API key")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("techpass client for %q: missing %s", cfg.Namespace, strings.Join(missing, ", "))
	}
	switch cfg.AssertionAlg {
	case "", AlgRS256, AlgPS256:
	default:
		return nil, fmt.Errorf("techpass client for %q: assertion algorithm %q is not RS256 or PS256", cfg.Namespace, cfg.AssertionAlg)
	}
	if err := cfg.Renewal.Validate(); err != nil {
		return nil, fmt.Errorf("techpass client for %q: %w", cfg.Namespace, err)
	}
	routes := cfg.Routes
	if routes == nil {
		routes = Routes()
	}
	if err := CheckRoutes(routes); err != nil {
		return nil, fmt.Errorf("techpass client for %q: %w", cfg.Namespace, err)
	}
	switch cfg.MembersSource {
	case "", MembersFromGetGroup, MembersFromListRoute:
	default:
		return nil, fmt.Errorf("techpass client for %q: members source %q is not %s or %s", cfg.Namespace, cfg.MembersSource, MembersFromGetGroup, MembersFromListRoute)
	}
	if cfg.MemberPageSize < 0 {
		return nil, fmt.Errorf("techpass client for %q: member page size must not be negative", cfg.Namespace)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Client{cfg: cfg, routes: routes, http: hc, pacer: cfg.Pacer, log: cfg.Logger}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.pacer == nil {
		c.pacer = noPacer{}
	}
	c.tokens = newTokenCache(fetchToken(cfg, hc), cfg.Now, cfg.Renewal, cfg.Logger)
	return c, nil
}

// Health reports the state of the client's token lifecycle: whether the
// token endpoint issues tokens, refuses the credentials or is unavailable,
// since when, and until when the token in memory serves. It sends nothing.
func (c *Client) Health() Health { return c.tokens.snapshot() }

// Refresh requests a new access token now, whatever the renewal schedule
// and backoff, for example after an operator rotated the credentials. On
// failure the current token stays in use while it is valid; the error is
// sanitized.
func (c *Client) Refresh(ctx context.Context) error { return c.tokens.refresh(ctx) }

// CredentialsChanged tells the client that its credentials were rotated:
// the backoff after a failed token request is forgotten and the token is
// renewed at the next use (the current one serves until then, and on
// failure until it expires).
func (c *Client) CredentialsChanged() { c.tokens.credentialsChanged() }

// Namespace returns the namespace the client acts in.
func (c *Client) Namespace() string { return c.cfg.Namespace }

// Route returns the route named n in the client's table.
func (c *Client) Route(n RouteName) Route { return lookupRoute(c.routes, n) }

// ListGroups returns every group of the namespace that TechBiz does not
// manage (TechPass leaves those out by default).
func (c *Client) ListGroups(ctx context.Context) ([]Group, error) {
	var out GroupList
	if err := c.call(ctx, RouteListGroups, nil, nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Groups, nil
}

// ListGroupsWithTechBiz returns every group of the namespace, those TechBiz
// manages included (?includeOnTechBiz=true). A group it lists that
// ListGroups does not is TechBiz-managed.
func (c *Client) ListGroupsWithTechBiz(ctx context.Context) ([]Group, error) {
	var out GroupList
	q := url.Values{ParamIncludeOnTechBiz: {"true"}}
	if err := c.call(ctx, RouteListGroups, nil, q, nil, &out); err != nil {
		return nil, err
	}
	return out.Groups, nil
}

// CreateGroup creates a group named name.
func (c *Client) CreateGroup(ctx context.Context, name, description string) (Group, error) {
	var out Group
	err := c.call(ctx, RouteCreateGroup, nil, nil, CreateGroupRequest{Name: name, Description: description}, &out)
	return out, err
}

// GetGroup returns the group with TechPass id id, with its members (the
// whole list: Get Group's default) and owners.
func (c *Client) GetGroup(ctx context.Context, id string) (GroupDetail, error) {
	var out GroupDetail
	err := c.call(ctx, RouteGetGroup, []string{"groupId", id}, nil, nil, &out)
	return out, err
}

// DeleteGroup deletes the group with TechPass id id.
func (c *Client) DeleteGroup(ctx context.Context, id string) error {
	return c.call(ctx, RouteDeleteGroup, []string{"groupId", id}, nil, nil, nil)
}

// UpdateGroup sets the description of the group with TechPass id groupID
// (an empty one clears it) and returns the group as TechPass now holds it.
// A group that does not exist is an *Error with Status 404.
func (c *Client) UpdateGroup(ctx context.Context, groupID, description string) (Group, error) {
	var out Group
	err := c.call(ctx, RouteUpdateGroup, []string{"groupId", groupID}, nil, UpdateGroupRequest{Description: description}, &out)
	return out, err
}

// GetUser returns the TechPass user named by identifier: a login e-mail or
// an Azure AD object id. An unknown user is an *Error with Status 404. The
// path names no namespace, but the request carries this client's API key
// and token like every other.
func (c *Client) GetUser(ctx context.Context, identifier string) (User, error) {
	var out User
	if err := c.call(ctx, RouteGetUser, []string{"identifier", identifier}, nil, nil, &out); err != nil {
		return User{}, err
	}
	if out.ID == "" {
		// The answer's shape is assumed: say so rather than hand back a
		// user nobody can add.
		return User{}, fmt.Errorf("techpass %s: decode answer: no user id", RouteGetUser)
	}
	return out, nil
}

// ListMembers returns one page of the members of the group with TechPass id
// groupID: the first page for an empty cursor, else the page after the one
// whose Next was cursor. It sends exactly one request; the caller pages
// (each page waits its turn in the Pacer), and must bound its pages: a
// TechPass that ignores the paging parameters answers every page alike, and
// a full page always names a next one. A group that does not exist is an
// *Error with Status 404. A cursor is passed through to the list-members
// route (TechPass answers one it does not accept, typically with a 400);
// with Get Group it must be one this method returned (a page number from 2),
// else the error wraps ErrInvalidArgument and nothing is sent.
//
// By default the members come from Get Group, with the owners
// (OwnersKnown): the full list in one request, or pages of
// Config.MemberPageSize; with MembersFromListRoute, from the list-members
// route, without owners.
func (c *Client) ListMembers(ctx context.Context, groupID, cursor string) (MemberPage, error) {
	if c.cfg.MembersSource == MembersFromListRoute {
		var q url.Values
		if cursor != "" {
			q = url.Values{ParamCursor: {cursor}}
		}
		var out MemberPage
		err := c.call(ctx, RouteListMembers, []string{"groupId", groupID}, q, nil, &out)
		return out, err
	}
	size := c.cfg.MemberPageSize
	page := 1
	if cursor != "" {
		n, err := strconv.Atoi(cursor)
		if err != nil || n < 2 || size == 0 {
			return MemberPage{}, fmt.Errorf("techpass %s: %w: page cursor %q", RouteGetGroup, ErrInvalidArgument, cursor)
		}
		page = n
	}
	var q url.Values
	if size > 0 {
		q = url.Values{ParamPage: {strconv.Itoa(page)}, ParamPageSize: {strconv.Itoa(size)}}
	}
	var out GroupDetail
	if err := c.call(ctx, RouteGetGroup, []string{"groupId", groupID}, q, nil, &out); err != nil {
		return MemberPage{}, err
	}
	mp := MemberPage{Members: out.Users, Owners: out.Owners, OwnersKnown: true}
	// A full page may have more after it. A page longer than asked for
	// means the parameters were not understood and the list is whole.
	if size > 0 && len(out.Users) == size {
		mp.Next = strconv.Itoa(page + 1)
	}
	return mp, nil
}

// AddMember adds the user with object id userID to the group with TechPass
// id groupID. The *Error statuses to expect: 409 when the user is already a
// member, 403 for a dynamic group, 404 when the group or the user does not
// exist.
func (c *Client) AddMember(ctx context.Context, groupID, userID string) error {
	return c.call(ctx, RouteAddMember, []string{"groupId", groupID}, nil, AddMemberRequest{UserID: userID}, nil)
}

// RemoveMember removes the user with object id userID from the group with
// TechPass id groupID. The *Error statuses to expect: 404 when the user is
// not a member or the group does not exist, 403 for a dynamic group.
func (c *Client) RemoveMember(ctx context.Context, groupID, userID string) error {
	return c.call(ctx, RouteRemoveMember, []string{"groupId", groupID, "userId", userID}, nil, nil, nil)
}

// maxBody bounds how much of an answer is read.
const maxBody = 4 << 20

// call sends one Automation API request through the pacer. args are the
// route's path placeholders as name/value pairs ({namespace} is filled with
// the client's); query holds the route's query parameters, nil for none. A
// 401 drops the cached token and the request is sent once more (paced again)
// with a new one.
func (c *Client) call(ctx context.Context, name RouteName, args []string, query url.Values, in, out any) error {
	route := lookupRoute(c.routes, name)
	for i := 1; i < len(args); i += 2 {
		if v := args[i]; v == "" || v == "." || v == ".." {
			// Such a segment would name another resource, or none.
			return fmt.Errorf("techpass %s: %w: %s %q", name, ErrInvalidArgument, args[i-1], v)
		}
	}
	path := route.Path(append([]string{"namespace", c.cfg.Namespace}, args...)...)
	if len(query) > 0 {
		wire := url.Values{}
		for k, v := range query {
			w, ok := route.Params[k]
			if !ok {
				panic("techpass: route " + string(name) + " takes no query parameter " + k)
			}
			wire[w] = v
		}
		path += "?" + wire.Encode()
	}
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("techpass %s: encode request: %w", name, err)
		}
	}
	for try := 0; ; try++ {
		token, err := c.tokens.token(ctx)
		if err != nil {
			return fmt.Errorf("techpass %s: %w", name, err)
		}
		status, header, data, err := c.send(ctx, route, path, token, body)
		if err != nil {
			return fmt.Errorf("techpass %s: %w", name, err)
		}
		if status == http.StatusUnauthorized && try == 0 {
			c.tokens.invalidate(token)
			continue
		}
		if status < 200 || status > 299 {
			now := c.cfg.Now()
			ra := retryAfter(header, now)
			if status == http.StatusTooManyRequests && ra == 0 {
				ra = DefaultThrottleWait
			}
			if h, ok := c.pacer.(Holder); ok && ra > 0 && (status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable) {
				// No other request of the tenant may start before the
				// upstream said it would accept one.
				h.Hold(now.Add(ra))
			}
			e := c.errorOf(data, token)
			e.Route, e.Status, e.RetryAfter = name, status, ra
			if e.TraceID != "" {
				// TechPass support asks for it.
				c.log.Warn("TechPass answered an error", "route", name, "status", status, "code", e.Code, "trace_id", e.TraceID)
			}
			return e
		}
		if out == nil || len(data) == 0 {
			return nil
		}
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("techpass %s: decode answer (HTTP %d): %w", name, status, err)
		}
		return nil
	}
}

// send performs one paced HTTP exchange and returns the status and body.
func (c *Client) send(ctx context.Context, route Route, path, token string, body []byte) (int, http.Header, []byte, error) {
	apiKey, err := c.cfg.APIKey()
	if err != nil {
		return 0, nil, nil, fmt.Errorf("read API key: %w", err)
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, route.Method, strings.TrimRight(c.cfg.APIURL, "/")+path, rd)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("x-api-key", apiKey)
	req.Header.Set("Authorization", "Bearer "+token)

	release, err := c.pacer.Acquire(ctx)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("wait for upstream slot: %w", err)
	}
	defer release()
	if st, ok := c.pacer.(Starter); ok {
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			WroteHeaders: func() { st.Started(c.cfg.Now()) },
		}))
	}
	start := time.Now()
	status, header, data, err := c.exchange(req)
	if c.cfg.Observe != nil {
		c.cfg.Observe(route.Name, status, time.Since(start))
	}
	return status, header, data, err
}

// exchange sends req and reads the whole answer.
func (c *Client) exchange(req *http.Request) (int, http.Header, []byte, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		// The URL holds only the base, the namespace, ids and a page
		// cursor; credentials travel in headers, which net/http errors
		// never print.
		return 0, nil, nil, fmt.Errorf("request failed: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("read answer: %w", err)
	}
	return resp.StatusCode, resp.Header, data, nil
}

// errorOf reads an error answer in either shape (see ErrorBody) into an
// Error with a short printable reason, a code of digits and a trace id of a
// safe charset, dropping anything else and redacting credentials.
func (c *Client) errorOf(data []byte, token string) *Error {
	var eb ErrorBody
	if json.Unmarshal(data, &eb) != nil {
		return &Error{}
	}
	msg := eb.Message
	e := &Error{}
	if d := eb.Error; d != nil {
		if d.Message != "" {
			msg = d.Message
		}
		e.Code = clipSafe(strings.Trim(string(d.Code), `"`), 16, func(r rune) bool { return '0' <= r && r <= '9' })
		e.TraceID = SafeTraceID(d.TraceID)
	}
	e.Message = c.sanitize(msg, token)
	if e.TraceID != "" && c.sanitize(e.TraceID, token) != e.TraceID {
		e.TraceID = "" // it held a credential
	}
	return e
}

// SafeTraceID returns id if it is a trace id safe to log and show: 1 to 64
// characters of letters, digits, '.', '_', ':' and '-'; else "".
func SafeTraceID(id string) string {
	return clipSafe(id, 64, func(r rune) bool {
		return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune("._:-", r)
	})
}

// clipSafe returns s when it is at most n characters, all ok; else "".
func clipSafe(s string, n int, ok func(rune) bool) string {
	if s == "" || len(s) > n || strings.IndexFunc(s, func(r rune) bool { return !ok(r) }) >= 0 {
		return ""
	}
	return s
}

// sanitize turns the API's message into a short printable reason,
// redacting credentials.
func (c *Client) sanitize(raw, token string) string {
	msg := strings.Map(func(r rune) rune {
		if r > unicode.MaxASCII || !unicode.IsPrint(r) {
			return -1
		}
		return r
	}, raw)
	if token != "" {
		msg = strings.ReplaceAll(msg, token, "[redacted]")
	}
	if k, err := c.cfg.APIKey(); err == nil && k != "" {
		msg = strings.ReplaceAll(msg, k, "[redacted]")
	}
	if c.cfg.ClientSecret != nil {
		if s, err := c.cfg.ClientSecret(); err == nil && s != "" {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
		}
	}
	if len(msg) > 200 {
		msg = msg[:200]
	}
	return msg
}

// retryAfter reads a Retry-After header given in seconds or as an HTTP date.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// Temporary reports whether err is worth retrying later: throttling (429),
// server errors, timeouts, connection failures, and token failures. How long
// to wait is returned too when known: the API's Retry-After, or the token
// backoff. throttled is true for 429, which is not a failure of the call.
//
// Token failures include refused credentials: they need an operator, but
// rotation fixes them without a restart, so they are retried within the
// caller's bounded policy too.
func Temporary(err error) (retry bool, after time.Duration, throttled bool) {
	if errors.Is(err, ErrInvalidArgument) {
		return false, 0, false
	}
	var ae *Error
	if errors.As(err, &ae) {
		switch {
		case ae.Status == http.StatusTooManyRequests:
			return true, ae.RetryAfter, true
		case ae.Status >= 500, ae.Status == http.StatusRequestTimeout, ae.Status == http.StatusUnauthorized:
			return true, ae.RetryAfter, false
		}
		return false, 0, false
	}
	var te *TokenError
	if errors.As(err, &te) {
		return true, te.RetryAfter, false
	}
	var ce *CredentialError
	if errors.As(err, &ce) {
		return true, ce.RetryAfter, false
	}
	return err != nil && !errors.Is(err, context.Canceled), 0, false
}

// StatusOf returns the HTTP status of an Automation API error, or 0.
func StatusOf(err error) int {
	var ae *Error
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}
