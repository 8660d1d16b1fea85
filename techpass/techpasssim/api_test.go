package techpasssim_test

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/groupgate/groupgate/internal/testkit"
	"github.com/groupgate/groupgate/techpass"
	"github.com/groupgate/groupgate/techpass/techpasssim"
)

func TestAPIKey(t *testing.T) {
	e := newEnv(t, techpasssim.Config{}, shipNamespace(), dockNamespace())
	tok := e.token(shipClient, shipSecret)
	tests := []struct {
		name, namespace, key string
	}{
		{"missing key", ns, ""},
		{"wrong key", ns, shipKey + "x"},
		{"key of another namespace", ns, dockKey},
		{"unknown namespace", "NOPE", shipKey},
		{"namespace in another case", "ship", shipKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantStatus(t, e.paced(http.MethodGet, groupsPath(t, tt.namespace), tt.key, tok, nil), http.StatusForbidden, "Forbidden")
		})
	}
	st := e.sim.Stats()
	if st.Totals.Forbidden != len(tests) || st.Totals.Requests != 0 {
		t.Errorf("forbidden/requests = %d/%d, want %d/0: a 403 is not a request", st.Totals.Forbidden, st.Totals.Requests, len(tests))
	}

	// Rotation: the namespace may hold several keys, and replacing them
	// revokes the old ones.
	if err := e.sim.SetAPIKeys(ns, shipKey, "ship-api-key-next"); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, e.paced(http.MethodGet, groupsPath(t, ns), "ship-api-key-next", tok, nil), http.StatusOK, "")
	wantStatus(t, e.paced(http.MethodGet, groupsPath(t, ns), shipKey, tok, nil), http.StatusOK, "")
	if err := e.sim.SetAPIKeys(ns, "ship-api-key-next"); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, e.paced(http.MethodGet, groupsPath(t, ns), shipKey, tok, nil), http.StatusForbidden, "Forbidden")
}

func TestBearer(t *testing.T) {
	e := newEnv(t, techpasssim.Config{}, shipNamespace(), dockNamespace())
	tok := e.token(shipClient, shipSecret)
	dockTok := e.token(dockClient, dockSecret)
	send := func(auth string) response {
		t.Helper()
		e.clock.Advance(time.Second)
		req, err := http.NewRequest(http.MethodGet, e.srv.URL+groupsPath(t, ns), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("x-api-key", shipKey)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		return e.do(req)
	}
	for name, auth := range map[string]string{
		"missing":                    "",
		"unknown token":              "Bearer " + strings.Repeat("A", 43),
		"token of another namespace": "Bearer " + dockTok,
		"Basic scheme":               "Basic " + tok,
		"no scheme":                  tok,
		"empty bearer":               "Bearer ",
	} {
		t.Run(name, func(t *testing.T) {
			wantStatus(t, send(auth), http.StatusUnauthorized, "Unauthorized")
		})
	}
	wantStatus(t, send("bearer "+tok), http.StatusOK, "") // the scheme is case-insensitive

	// The token expires TokenLifetime after it was issued; the test clock has
	// moved on by the requests above.
	e2 := newEnv(t, techpasssim.Config{})
	tok = e2.token(shipClient, shipSecret)
	e2.clock.Advance(techpasssim.DefaultTokenLifetime - time.Second)
	wantStatus(t, e2.api(http.MethodGet, groupsPath(t, ns), shipKey, tok, nil), http.StatusOK, "")
	e2.clock.Advance(time.Second)
	wantStatus(t, e2.api(http.MethodGet, groupsPath(t, ns), shipKey, tok, nil), http.StatusUnauthorized, "Unauthorized")
	if st := e2.sim.Stats().Namespaces[ns]; st.Unauthorized != 1 || st.Requests != 2 {
		t.Errorf("unauthorized/requests = %d/%d, want 1/2", st.Unauthorized, st.Requests)
	}
}

func TestRateBackToBack(t *testing.T) {
	e := newEnv(t, techpasssim.Config{})
	tok := e.token(shipClient, shipSecret)
	wantStatus(t, e.api(http.MethodGet, groupsPath(t, ns), shipKey, tok, nil), http.StatusOK, "")
	r := e.api(http.MethodGet, groupsPath(t, ns), shipKey, tok, nil)
	wantStatus(t, r, http.StatusTooManyRequests, "Too Many Requests")
	if got := r.header.Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After = %q, want 1", got)
	}
	st := e.sim.Stats().Namespaces[ns]
	if st.Requests != 2 || st.Violations != 1 || st.Throttled != 0 {
		t.Errorf("requests/violations/throttled = %d/%d/%d, want 2/1/0", st.Requests, st.Violations, st.Throttled)
	}
	if gap, ok := st.MinGap(); !ok || gap != 0 {
		t.Errorf("min gap = %v (%v), want 0", gap, ok)
	}
}

// TestRateTimeline walks a fixed timeline through the rate enforcement:
// what each arrival gets, and that refused arrivals do not move the start
// the next one is measured from.
func TestRateTimeline(t *testing.T) {
	const interval = 2500 * time.Millisecond
	steps := []struct {
		after      time.Duration // since the previous step
		status     int
		retryAfter string
	}{
		{0, http.StatusOK, ""},
		{400 * time.Millisecond, http.StatusTooManyRequests, "3"},  // 2.1s left, rounded up
		{1100 * time.Millisecond, http.StatusTooManyRequests, "1"}, // 1.0s left
		{900 * time.Millisecond, http.StatusTooManyRequests, "1"},  // 0.1s left, at least 1
		{100 * time.Millisecond, http.StatusOK, ""},                // 2.5s after the first start
		{interval, http.StatusOK, ""},
		{interval - time.Nanosecond, http.StatusTooManyRequests, "1"},
	}
	e := newEnv(t, techpasssim.Config{Interval: interval})
	tok := e.token(shipClient, shipSecret)
	for i, s := range steps {
		e.clock.Advance(s.after)
		r := e.api(http.MethodGet, groupsPath(t, ns), shipKey, tok, nil)
		if r.status != s.status || r.header.Get("Retry-After") != s.retryAfter {
			t.Errorf("step %d: %d Retry-After %q, want %d %q", i, r.status, r.header.Get("Retry-After"), s.status, s.retryAfter)
		}
	}
	st := e.sim.Stats().Namespaces[ns]
	if st.Requests != len(steps) || st.Violations != 4 {
		t.Errorf("requests/violations = %d/%d, want %d/4", st.Requests, st.Violations, len(steps))
	}
	if gap, _ := st.MinGap(); gap != 100*time.Millisecond {
		t.Errorf("min gap = %v, want 100ms (arrivals, violating ones included)", gap)
	}
}

func TestRatePaced(t *testing.T) {
	ship := shipNamespace()
	ship.Interval = 1500 * time.Millisecond // overrides Config.Interval
	e := newEnv(t, techpasssim.Config{Interval: 200 * time.Millisecond}, ship)
	e.tick = ship.Interval
	tok := e.token(shipClient, shipSecret)
	for range 5 {
		wantStatus(t, e.paced(http.MethodGet, groupsPath(t, ns), shipKey, tok, nil), http.StatusOK, "")
	}
	st := e.sim.Stats().Namespaces[ns]
	if st.Requests != 5 || st.Violations != 0 || st.MaxInFlight != 1 {
		t.Errorf("requests/violations/maxInFlight = %d/%d/%d, want 5/0/1", st.Requests, st.Violations, st.MaxInFlight)
	}
	if gap, ok := st.MinGap(); !ok || gap < ship.Interval {
		t.Errorf("min gap = %v, want at least %v", gap, ship.Interval)
	}
	if st.LastStart == nil || !st.LastStart.Equal(e.clock.Now()) {
		t.Errorf("last start = %v, want %v", st.LastStart, e.clock.Now())
	}
}

// TestRateOverlap holds one request in flight (with injected latency, until
// the client gives up) and sends another: the second is a violation even
// though the interval has passed, and both count as in flight.
func TestRateOverlap(t *testing.T) {
	e := newEnv(t, techpasssim.Config{Faults: techpasssim.Faults{LatencyMin: time.Hour, LatencyMax: time.Hour}})
	tok := e.token(shipClient, shipSecret)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.URL+groupsPath(t, ns), nil)
		req.Header.Set("x-api-key", shipKey)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := e.srv.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	testkit.Eventually(t, 10*time.Second, "a request in flight", func() bool { return e.sim.Stats().Namespaces[ns].InFlight == 1 })

	e.clock.Advance(time.Hour) // the interval is no excuse: one is in flight
	r := e.api(http.MethodGet, groupsPath(t, ns), shipKey, tok, nil)
	wantStatus(t, r, http.StatusTooManyRequests, "Too Many Requests")
	if r.header.Get("Retry-After") != "1" {
		t.Errorf("Retry-After = %q, want 1", r.header.Get("Retry-After"))
	}
	cancel()
	if err := <-done; err == nil {
		t.Error("the held request completed; want it cancelled")
	}
	testkit.Eventually(t, 10*time.Second, "no request in flight", func() bool { return e.sim.Stats().Namespaces[ns].InFlight == 0 })
	st := e.sim.Stats().Namespaces[ns]
	if st.MaxInFlight != 2 || st.Violations != 1 || st.Requests != 2 {
		t.Errorf("maxInFlight/violations/requests = %d/%d/%d, want 2/1/2", st.MaxInFlight, st.Violations, st.Requests)
	}
}

// TestRateConcurrentBurst fires requests at once on the real clock: exactly
// one is served, every other is a violation, and the namespaces do not
// throttle each other.
func TestRateConcurrentBurst(t *testing.T) {
	sim := techpasssim.New(techpasssim.Config{Interval: 30 * time.Second, Seed: 1})
	for _, n := range []techpasssim.Namespace{shipNamespace(), dockNamespace()} {
		if err := sim.AddNamespace(n); err != nil {
			t.Fatal(err)
		}
	}
	e := &env{t: t, sim: sim, clock: newClock()}
	e.srv = newServer(t, sim)
	tokens := map[string]string{ns: e.token(shipClient, shipSecret), "DOCK": e.token(dockClient, dockSecret)}
	keys := map[string]string{ns: shipKey, "DOCK": dockKey}

	const perNamespace = 8
	start := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := map[string]int{}
	for name := range tokens {
		for range perNamespace {
			wg.Go(func() {
				<-start
				req, _ := http.NewRequest(http.MethodGet, e.srv.URL+groupsPath(t, name), nil)
				req.Header.Set("x-api-key", keys[name])
				req.Header.Set("Authorization", "Bearer "+tokens[name])
				resp, err := e.srv.Client().Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					mu.Lock()
					ok[name]++
					mu.Unlock()
				}
			})
		}
	}
	close(start)
	wg.Wait()
	st := sim.Stats()
	for name := range tokens {
		n := st.Namespaces[name]
		if ok[name] != 1 || n.Violations != perNamespace-1 || n.Requests != perNamespace || n.InFlight != 0 {
			t.Errorf("%s: served/violations/requests/inFlight = %d/%d/%d/%d, want 1/%d/%d/0",
				name, ok[name], n.Violations, n.Requests, n.InFlight, perNamespace-1, perNamespace)
		}
	}
}

// TestRatePacedRealClock is a client pacing itself on the real clock with a
// short interval, as the service's pacing gate will: no violation.
func TestRatePacedRealClock(t *testing.T) {
	const interval = 30 * time.Millisecond
	sim := techpasssim.New(techpasssim.Config{Interval: interval, Seed: 1})
	if err := sim.AddNamespace(shipNamespace()); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, sim: sim, clock: newClock()}
	e.srv = newServer(t, sim)
	tok := e.token(shipClient, shipSecret)
	// Pacing from the previous answer, not the previous send, is what makes
	// the gap between server-side arrivals at least the interval whatever
	// the network delays: the previous request arrived before its answer
	// left.
	next := time.Now()
	for range 5 {
		time.Sleep(time.Until(next)) // pacing, as a client does; not waiting for a condition
		wantStatus(t, e.api(http.MethodGet, groupsPath(t, ns), shipKey, tok, nil), http.StatusOK, "")
		next = time.Now().Add(interval)
	}
	st := sim.Stats().Namespaces[ns]
	if gap, _ := st.MinGap(); st.Violations != 0 || gap < interval {
		t.Errorf("violations = %d, min gap %v; want 0 and at least %v", st.Violations, gap, interval)
	}
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestGroupCRUD(t *testing.T) {
	e := newEnv(t, techpasssim.Config{}, shipNamespace(), dockNamespace())
	tok := e.token(shipClient, shipSecret)

	list := func() []techpass.Group {
		t.Helper()
		r := e.paced(http.MethodGet, groupsPath(t, ns), shipKey, tok, nil)
		wantStatus(t, r, http.StatusOK, "")
		if !strings.Contains(string(r.body), `"groups":[`) {
			t.Errorf("list body %s lacks a groups array", r.body)
		}
		return decode[techpass.GroupList](t, r).Groups
	}
	if got := list(); len(got) != 0 {
		t.Fatalf("groups = %v, want none", got)
	}

	var created []techpass.Group
	for _, name := range []string{"SHIP:MOH:billing", "SHIP:MOE:billing", "group 1"} {
		r := e.paced(http.MethodPost, groupsPath(t, ns), shipKey, tok, techpass.CreateGroupRequest{Name: name, Description: "about " + name})
		wantStatus(t, r, http.StatusCreated, "")
		g := decode[techpass.Group](t, r)
		want := techpass.Group{
			ID: g.ID, Name: name, GRN: techpass.GRN(ns, name), Description: "about " + name,
			Created: e.clock.Now().UTC().Truncate(time.Second),
		}
		if g != want {
			t.Errorf("created %+v, want %+v", g, want)
		}
		if !uuidRE.MatchString(g.ID) {
			t.Errorf("id %q is not UUID-shaped", g.ID)
		}
		if !strings.Contains(string(r.body), `"created":"2025-03-14T09:`) || strings.Contains(string(r.body), ".589") {
			t.Errorf("created is not RFC 3339 in whole seconds: %s", r.body)
		}
		created = append(created, g)
	}
	if got := list(); !equalGroups(got, created) {
		t.Errorf("list = %+v, want %+v in creation order", got, created)
	}
	if got := e.sim.Groups(ns); !equalGroups(got, created) {
		t.Errorf("Groups = %+v, want %+v", got, created)
	}
	if got := e.sim.Groups("DOCK"); got == nil || len(got) != 0 {
		t.Errorf("Groups(DOCK) = %#v, want empty", got)
	}
	if got := e.sim.Groups("NOPE"); got != nil {
		t.Errorf("Groups(NOPE) = %v, want nil", got)
	}

	r := e.paced(http.MethodGet, groupPath(t, ns, created[1].ID), shipKey, tok, nil)
	wantStatus(t, r, http.StatusOK, "")
	if g := decode[techpass.Group](t, r); g != created[1] {
		t.Errorf("get = %+v, want %+v", g, created[1])
	}
	r = e.paced(http.MethodDelete, groupPath(t, ns, created[1].ID), shipKey, tok, nil)
	wantStatus(t, r, http.StatusNoContent, "")
	if len(r.body) != 0 {
		t.Errorf("delete body = %q, want none", r.body)
	}
	wantStatus(t, e.paced(http.MethodGet, groupPath(t, ns, created[1].ID), shipKey, tok, nil), http.StatusNotFound, "group not found")
	wantStatus(t, e.paced(http.MethodDelete, groupPath(t, ns, created[1].ID), shipKey, tok, nil), http.StatusNotFound, "group not found")
	if got := list(); !equalGroups(got, []techpass.Group{created[0], created[2]}) {
		t.Errorf("list after delete = %+v", got)
	}

	// Another namespace cannot see SHIP's groups.
	dockTok := e.token(dockClient, dockSecret)
	wantStatus(t, e.paced(http.MethodGet, groupPath(t, "DOCK", created[0].ID), dockKey, dockTok, nil), http.StatusNotFound, "group not found")

	// Recreating a deleted group counts a second creation of that name.
	wantStatus(t, e.paced(http.MethodPost, groupsPath(t, ns), shipKey, tok, techpass.CreateGroupRequest{Name: "SHIP:MOE:billing"}), http.StatusCreated, "")
	st := e.sim.Stats().Namespaces[ns]
	want := map[string]int{"SHIP:MOH:billing": 1, "SHIP:MOE:billing": 2, "group 1": 1}
	if len(st.CreatesByName) != len(want) {
		t.Errorf("createsByName = %v, want %v", st.CreatesByName, want)
	}
	for k, v := range want {
		if st.CreatesByName[k] != v {
			t.Errorf("createsByName[%q] = %d, want %d", k, st.CreatesByName[k], v)
		}
	}
	if st.Violations != 0 {
		t.Errorf("violations = %d, want 0", st.Violations)
	}
}

func equalGroups(a, b []techpass.Group) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Created.Equal(b[i].Created) {
			return false
		}
		a, b := a[i], b[i]
		a.Created, b.Created = time.Time{}, time.Time{}
		if a != b {
			return false
		}
	}
	return true
}

func TestCreateGroupValidation(t *testing.T) {
	e := newEnv(t, techpasssim.Config{})
	tok := e.token(shipClient, shipSecret)
	create := func(body any) response {
		t.Helper()
		return e.paced(http.MethodPost, groupsPath(t, ns), shipKey, tok, body)
	}
	wantStatus(t, create(techpass.CreateGroupRequest{Name: ""}), http.StatusBadRequest, "group name is required")
	wantStatus(t, create(techpass.CreateGroupRequest{Name: "  \t"}), http.StatusBadRequest, "group name is required")
	wantStatus(t, create(techpass.CreateGroupRequest{Name: strings.Repeat("n", 100)}), http.StatusBadRequest, "group name must be at most 99 characters")
	wantStatus(t, create(techpass.CreateGroupRequest{Name: strings.Repeat("n", 99)}), http.StatusCreated, "")
	wantStatus(t, create(techpass.CreateGroupRequest{Name: strings.Repeat("é", 99)}), http.StatusCreated, "") // characters, not bytes
	wantStatus(t, create("not an object"), http.StatusBadRequest, "Invalid request body")

	wantStatus(t, create(techpass.CreateGroupRequest{Name: "SHIP:MOH:billing"}), http.StatusCreated, "")
	wantStatus(t, create(techpass.CreateGroupRequest{Name: "SHIP:MOH:billing"}), http.StatusConflict, "group already exists")
	wantStatus(t, create(techpass.CreateGroupRequest{Name: "ship:moh:BILLING"}), http.StatusConflict, "group already exists")
	st := e.sim.Stats().Namespaces[ns]
	if st.DuplicateCreates != 2 || st.CreatesByName["SHIP:MOH:billing"] != 1 || len(e.sim.Groups(ns)) != 3 {
		t.Errorf("duplicates = %d, creates = %v, groups = %d; want 2, billing once, 3", st.DuplicateCreates, st.CreatesByName, len(e.sim.Groups(ns)))
	}
}

func TestGroupLimit(t *testing.T) {
	dock := dockNamespace()
	dock.GroupLimit = 1 // overrides Config.GroupLimit
	e := newEnv(t, techpasssim.Config{GroupLimit: 3}, shipNamespace(), dock)
	tok := e.token(shipClient, shipSecret)
	var first techpass.Group
	for i, name := range []string{"a", "b", "c"} {
		r := e.paced(http.MethodPost, groupsPath(t, ns), shipKey, tok, techpass.CreateGroupRequest{Name: name})
		wantStatus(t, r, http.StatusCreated, "")
		if i == 0 {
			first = decode[techpass.Group](t, r)
		}
	}
	wantStatus(t, e.paced(http.MethodPost, groupsPath(t, ns), shipKey, tok, techpass.CreateGroupRequest{Name: "d"}),
		http.StatusBadRequest, "group limit of 3 reached for namespace")
	// A duplicate at the limit is still a conflict.
	wantStatus(t, e.paced(http.MethodPost, groupsPath(t, ns), shipKey, tok, techpass.CreateGroupRequest{Name: "a"}),
		http.StatusConflict, "group already exists")
	wantStatus(t, e.paced(http.MethodDelete, groupPath(t, ns, first.ID), shipKey, tok, nil), http.StatusNoContent, "")
	wantStatus(t, e.paced(http.MethodPost, groupsPath(t, ns), shipKey, tok, techpass.CreateGroupRequest{Name: "d"}), http.StatusCreated, "")

	dockTok := e.token(dockClient, dockSecret)
	wantStatus(t, e.paced(http.MethodPost, groupsPath(t, "DOCK"), dockKey, dockTok, techpass.CreateGroupRequest{Name: "a"}), http.StatusCreated, "")
	wantStatus(t, e.paced(http.MethodPost, groupsPath(t, "DOCK"), dockKey, dockTok, techpass.CreateGroupRequest{Name: "b"}),
		http.StatusBadRequest, "group limit of 1 reached for namespace")
}
