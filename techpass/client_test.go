package techpass_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/groupgate/groupgate/internal/testkit"
	"github.com/groupgate/groupgate/pacing"
	"github.com/groupgate/groupgate/techpass"
	"github.com/groupgate/groupgate/techpass/techpasssim"
)

type fixture struct {
	sim        *techpasssim.Simulator
	srv        *httptest.Server
	clock      *testkit.ShiftedClock
	secretFile string
	client     *techpass.Client

	mu      sync.Mutex
	lastURL *url.URL // of the last request the simulator received
}

// newFixture runs a simulator (on its own settable clock) and a client
// reading its secret from a file.
func newFixture(t *testing.T, interval time.Duration) *fixture {
	t.Helper()
	return newFixtureWith(t, techpasssim.Config{Interval: interval})
}

// newFixtureWith is newFixture with a simulator configured by cfg (its Now
// and Seed are set here).
func newFixtureWith(t *testing.T, cfg techpasssim.Config, mutate ...func(*techpass.Config)) *fixture {
	t.Helper()
	interval := cfg.Interval
	clk := &testkit.ShiftedClock{}
	cfg.Now, cfg.Seed = clk.Now, 7
	sim := techpasssim.New(cfg)
	f := &fixture{sim: sim, clock: clk}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		u := *r.URL
		f.lastURL = &u
		f.mu.Unlock()
		sim.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	if err := sim.AddNamespace(techpasssim.Namespace{Name: "SHIP", DirectoryID: "dir", ClientID: "cid", ClientSecret: "s3cret-one", APIKeys: []string{"key-one"}}); err != nil {
		t.Fatal(err)
	}
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte("s3cret-one\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ccfg := techpass.Config{
		Namespace: "SHIP", APIURL: srv.URL, TokenURL: techpass.TokenURL(srv.URL, "dir"), ClientID: "cid",
		ClientSecret: func() (string, error) {
			b, err := os.ReadFile(secretFile)
			return strings.TrimSpace(string(b)), err
		},
		APIKey: func() (string, error) { return "key-one", nil },
		Pacer:  pacing.NewGate(interval+15*time.Millisecond, nil), // the guard absorbs scheduling jitter under -race on a loaded machine
	}
	for _, m := range mutate {
		m(&ccfg)
	}
	c, err := techpass.New(ccfg)
	if err != nil {
		t.Fatal(err)
	}
	f.srv, f.secretFile, f.client = srv, secretFile, c
	return f
}

// last returns the URL of the last request the simulator received.
// mustCreate creates a group through the client.
func (f *fixture) mustCreate(t *testing.T, name, description string) techpass.Group {
	t.Helper()
	g, err := f.client.CreateGroup(context.Background(), name, description)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func (f *fixture) last() *url.URL {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastURL
}

func TestClientGroupLifecycle(t *testing.T) {
	f := newFixture(t, 20*time.Millisecond)
	ctx := context.Background()
	g := f.mustCreate(t, "SHIP:MOH:billing", "Billing")
	if g.ID == "" || g.Name != "SHIP:MOH:billing" || g.GRN != "ship:SHIP:MOH:billing" || g.Created.IsZero() {
		t.Errorf("created %+v", g)
	}
	got, err := f.client.GetGroup(ctx, g.ID)
	if err != nil || got.ID != g.ID {
		t.Errorf("get: %+v %v", got, err)
	}
	list, err := f.client.ListGroups(ctx)
	if err != nil || len(list) != 1 {
		t.Errorf("list: %+v %v", list, err)
	}
	_, err = f.client.CreateGroup(ctx, "SHIP:MOH:BILLING", "")
	if techpass.StatusOf(err) != http.StatusConflict {
		t.Errorf("duplicate create: %v", err)
	}
	if err := f.client.DeleteGroup(ctx, g.ID); err != nil {
		t.Fatal(err)
	}
	err = f.client.DeleteGroup(ctx, g.ID)
	if techpass.StatusOf(err) != http.StatusNotFound {
		t.Errorf("second delete: %v", err)
	}
	if retry, _, _ := techpass.Temporary(err); retry {
		t.Errorf("404 must not be retried")
	}
	st := f.sim.Stats().Namespaces["SHIP"]
	if st.TokenRequests != 1 {
		t.Errorf("token requests %d, want 1: the token must be cached", st.TokenRequests)
	}
	if st.Violations != 0 || st.MaxInFlight != 1 {
		t.Errorf("violations %d, max in flight %d", st.Violations, st.MaxInFlight)
	}
}

// TestClientConcurrentCallersShareOneToken: many concurrent first calls
// cause one token request (single flight) and are paced one at a time.
func TestClientConcurrentCallersShareOneToken(t *testing.T) {
	f := newFixture(t, 20*time.Millisecond)
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if _, err := f.client.ListGroups(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	st := f.sim.Stats().Namespaces["SHIP"]
	if st.TokenRequests != 1 || st.Requests != 10 || st.Violations != 0 || st.MaxInFlight != 1 {
		t.Errorf("stats %+v", st.Counters)
	}
}

// TestClientRefreshesOn401: when the API says the token is no longer valid,
// the client fetches a new one and retries once, still paced.
func TestClientRefreshesOn401(t *testing.T) {
	f := newFixture(t, 20*time.Millisecond)
	ctx := context.Background()
	if _, err := f.client.ListGroups(ctx); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Hour) // the simulator now sees the token as expired
	if _, err := f.client.ListGroups(ctx); err != nil {
		t.Fatalf("after expiry at the API: %v", err)
	}
	st := f.sim.Stats().Namespaces["SHIP"]
	if st.TokenRequests != 2 || st.Unauthorized != 1 || st.Violations != 0 {
		t.Errorf("want one 401, two token requests, no violation: %+v", st.Counters)
	}
}

// TestClientRotatedSecretFile: a rotated secret file is read at the next
// token request, without a new client.
func TestClientRotatedSecretFile(t *testing.T) {
	f := newFixture(t, 20*time.Millisecond)
	ctx := context.Background()
	if _, err := f.client.ListGroups(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.sim.SetClientSecret("SHIP", "s3cret-two"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.secretFile, []byte("s3cret-two"), 0o600); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Hour)
	if _, err := f.client.ListGroups(ctx); err != nil {
		t.Fatalf("after rotation: %v", err)
	}
}

// TestClientTokenErrorsAreSanitized: a refused token request yields the
// OAuth2 error code and status only.
func TestClientTokenErrorsAreSanitized(t *testing.T) {
	f := newFixture(t, 20*time.Millisecond)
	if err := os.WriteFile(f.secretFile, []byte("wrong-secret-value"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := f.client.ListGroups(context.Background())
	var te *techpass.TokenError
	if !errors.As(err, &te) || te.Code != "invalid_client" || te.Status != http.StatusUnauthorized || !strings.HasPrefix(te.AADSTS, "AADSTS") {
		t.Fatalf("got %#v (%v)", te, err)
	}
	for _, leak := range []string{"wrong-secret-value", "s3cret-one", "key-one"} {
		if strings.Contains(err.Error(), leak) {
			t.Errorf("error leaks %q: %v", leak, err)
		}
	}
	if retry, _, _ := techpass.Temporary(err); !retry {
		t.Errorf("credential errors are retried within the bound (rotation fixes them)")
	}
	if f.sim.Stats().Namespaces["SHIP"].Requests != 0 {
		t.Errorf("no API request may be sent without a token")
	}
}

// TestClientThrottleAnswer: a 429 carries its Retry-After and is temporary.
func TestClientThrottleAnswer(t *testing.T) {
	f := newFixture(t, 20*time.Millisecond)
	if err := f.sim.SetFaults(techpasssim.Faults{ThrottleRate: 1, RetryAfter: time.Second}); err != nil {
		t.Fatal(err)
	}
	_, err := f.client.ListGroups(context.Background())
	retry, after, throttled := techpass.Temporary(err)
	if !retry || !throttled || after != time.Second {
		t.Fatalf("429: retry=%v after=%v throttled=%v (%v)", retry, after, throttled, err)
	}
	if err := f.sim.SetFaults(techpasssim.Faults{ServerErrorRate: 1}); err != nil {
		t.Fatal(err)
	}
	_, err = f.client.ListGroups(context.Background())
	if retry, _, throttled := techpass.Temporary(err); !retry || throttled || techpass.StatusOf(err) < 500 {
		t.Fatalf("5xx: %v", err)
	}
}

func TestClientUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	c, err := techpass.New(techpass.Config{Namespace: "SHIP", APIURL: url, TokenURL: url + "/t", ClientID: "c",
		ClientSecret: func() (string, error) { return "s", nil }, APIKey: func() (string, error) { return "k", nil }})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ListGroups(context.Background())
	if retry, _, _ := techpass.Temporary(err); !retry {
		t.Fatalf("connection refused must be temporary: %v", err)
	}
}

func TestNewRequiresEverything(t *testing.T) {
	_, err := techpass.New(techpass.Config{})
	for _, want := range []string{"namespace", "API URL", "token URL", "client id", "client secret", "API key"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
}

// TestRouteTable: every route has a unique name and method+pattern, the
// published ones are those TECHPASS.md lists, the others are marked as
// assumed, and only the published user lookup lives outside the namespace.
func TestRouteTable(t *testing.T) {
	published := map[string]bool{
		"GET /iam/namespace/{namespace}/groups":           true,
		"GET /iam/namespace/{namespace}/groups/{groupId}": true, // Get Group, .../{identifier} in RN
		"GET /iam/users/{identifier}":                     true,
	}
	seen := map[string]bool{}
	for _, r := range techpass.Routes() {
		key := r.Method + " " + r.Pattern
		if seen[key] || seen[string(r.Name)] {
			t.Errorf("duplicate route %s / %s", r.Name, key)
		}
		seen[key], seen[string(r.Name)] = true, true
		if !strings.HasPrefix(r.Pattern, "/iam/namespace/{namespace}/") && key != "GET /iam/users/{identifier}" {
			t.Errorf("%s: pattern %s outside the namespace", r.Name, r.Pattern)
		}
		switch {
		case r.Published && !published[key]:
			t.Errorf("%s is not published", key)
		case r.Published:
			delete(published, key)
			if !strings.Contains(r.Source, "RN") && !strings.Contains(r.Source, "tenant guide") {
				t.Errorf("%s: published without a source: %q", r.Name, r.Source)
			}
		case !strings.HasPrefix(r.Note, "assumed"):
			t.Errorf("%s must be marked as assumed: %q", r.Name, r.Note)
		}
		if r.Note == "" {
			t.Errorf("%s has no note", r.Name)
		}
	}
	for key := range published {
		t.Errorf("published route %s missing or not marked published", key)
	}
	if got := techpass.Routes()[0].Path("namespace", "SHIP", "groupId", "a/b"); got != "/iam/namespace/SHIP/groups" {
		t.Errorf("Path = %q", got)
	}
	rt := techpass.Routes()
	rt[0].Params["changed"] = "changed"
	if len(techpass.Routes()[0].Params) != 1 {
		t.Error("Routes shares its maps")
	}
	if err := techpass.CheckRoutes(techpass.Routes()); err != nil {
		t.Errorf("the built-in table does not check: %v", err)
	}
}

// TestResolveRoutes: corrections apply to the named route only, {identifier}
// stands for {groupId} in group routes, and every problem is reported at
// once, including patterns the simulator could not serve together.
func TestResolveRoutes(t *testing.T) {
	rt, err := techpass.ResolveRoutes(map[techpass.RouteName]techpass.RouteOverride{
		techpass.RouteGetGroup: {Method: "get", Path: "/v2/{namespace}/groups/{identifier}", Params: map[string]string{techpass.ParamPageSize: "size"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rt {
		switch {
		case r.Name == techpass.RouteGetGroup:
			if r.Method != "GET" || r.Pattern != "/v2/{namespace}/groups/{groupId}" || r.Params[techpass.ParamPageSize] != "size" ||
				r.Params[techpass.ParamPage] != "page" || !r.Overridden {
				t.Errorf("getGroup = %+v", r)
			}
		case r.Overridden:
			t.Errorf("%s marked overridden", r.Name)
		}
	}
	_, err = techpass.ResolveRoutes(map[techpass.RouteName]techpass.RouteOverride{
		techpass.RouteAddMember:    {Path: "/iam/namespace/{namespace}/groups/x/{groupId}"},
		techpass.RouteRemoveMember: {Path: "/iam/namespace/{namespace}/groups/{groupId}/{userId}", Method: "POST"},
		techpass.RouteGetUser:      {Path: "/iam/users/{identifier}/{identifier}"},
		techpass.RouteListGroups:   {Path: "/iam/{namespace}x/groups"},
	})
	if !errors.Is(err, techpass.ErrRoutes) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{"conflicts with another route", "{identifier} appears 2 times", "must be a whole path segment"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
}
