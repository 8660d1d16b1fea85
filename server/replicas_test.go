package server_test

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/groupgate/groupgate/api"
	"github.com/groupgate/groupgate/config"
	"github.com/groupgate/groupgate/internal/pgtest"
	"github.com/groupgate/groupgate/internal/testkit"
	"github.com/groupgate/groupgate/pgstore"
	"github.com/groupgate/groupgate/server"
	"github.com/groupgate/groupgate/techpass/techpasssim"
)

// Several replicas on one PostgreSQL database (README "Running several
// replicas"): two server.New instances on one throwaway database, in front
// of one simulator.

// startReplicas starts two gateways on one fresh database and simulator,
// with the same configuration (tenants, projects, keys), both ready. B's
// dispatchers are stopped, so A takes every tenant's lease (after the
// grace of a released one): the tests know which replica dispatches.
func startReplicas(t *testing.T) (a, b *gateway) {
	t.Helper()
	a = startGateway(t, gatewayOptions{postgres: pgtest.DSN(t), interval: 50 * time.Millisecond})
	b = a.replica()
	for _, g := range []*gateway{a, b} {
		testkit.Eventually(t, 10*time.Second, "the replica to be ready", func() bool {
			return g.do("GET", "/readyz", "", nil).status == http.StatusOK
		})
	}
	for tenant := range a.up.tps {
		server.StopDispatcher(b.srv, tenant)
	}
	return a, b
}

// replica starts another server on g's configuration (its store, its
// simulator, its keys).
func (g *gateway) replica() *gateway {
	g.t.Helper()
	return g.replicaWith(func(*config.Config) {})
}

// replicaWith starts another server on g's configuration changed by
// change.
func (g *gateway) replicaWith(change func(*config.Config)) *gateway {
	g.t.Helper()
	cfg := g.cfg
	change(&cfg)
	logs := &syncBuffer{}
	srv, err := server.New(cfg, server.Options{Logger: server.NewLogger(cfg, logs)})
	if err != nil {
		g.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &gateway{
		t: g.t, srv: srv, up: g.up, base: srv.URL(), logs: logs, keys: g.keys, bodies: &syncBuffer{},
		http: g.http, cfg: cfg, cancel: cancel, done: make(chan error, 1),
	}
	go func() { r.done <- srv.Run(ctx) }()
	g.t.Cleanup(r.stop)
	return r
}

// TestReplicasShareWrites: a group created through replica A is listed by
// B on its next read, although B had cached the project's list before (the
// cache follows GroupsVersion, a database value); its operation is read
// through B too.
func TestReplicasShareWrites(t *testing.T) {
	a, b := startReplicas(t)
	if got := b.list("SHIP/MOH"); len(got) != 0 {
		t.Fatalf("fresh list on B: %v", groupNames(got))
	}
	op := a.create("SHIP/MOH", "shared")
	if got := groupNames(b.list("SHIP/MOH")); !slices.Contains(got, "shared") {
		t.Fatalf("B's list right after A's create: %v, want shared", got)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("A:\n%s\nB:\n%s", a.logs.String(), b.logs.String())
		}
	})
	if got := b.await("SHIP/MOH", op.Id, 20*time.Second); got.State != api.Succeeded {
		t.Fatalf("operation read through B: %s", got.State)
	}
	if got := b.list("SHIP/MOH"); len(got) != 1 || got[0].State != api.GroupStateActive {
		t.Fatalf("B's list after the create succeeded: %+v", got)
	}
}

// TestReplicasPreferWaitHeldElsewhere: B does not dispatch SHIP; a create sent to B with Prefer: wait is
// started by A's dispatcher, woken by the store's signal of the enqueue,
// and B's held answer comes when A settles it (201, the group created).
func TestReplicasPreferWaitHeldElsewhere(t *testing.T) {
	a, b := startReplicas(t)
	req, err := http.NewRequest("POST", b.base+groupsPath("SHIP", "MOH"), bytes.NewReader(mustJSON(t, map[string]string{"name": "waited"})))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+b.keys["SHIP/MOH"])
	req.Header.Set("Prefer", "wait=20")
	start := time.Now()
	r := b.send(req)
	if r.status != http.StatusCreated {
		t.Fatalf("create held on B: %d %s, want 201", r.status, r.body)
	}
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("the held answer took %v", took)
	}
	if n := a.up.stats("SHIP").CreatesByName["SHIP:MOH:waited"]; n != 1 {
		t.Errorf("upstream creates of the group: %d, want 1", n)
	}
}

// TestReplicasRevokedKeyRefusedEverywhere: a key revoked through A is
// refused by B
//   - when B listens, at once: within 1 s, with a TTL of a minute and a
//     2 s poll, so only the signal (which drops B's cached generation)
//     can explain it;
//   - when B only polls, as behind a pooler in transaction mode, within
//     postgres.auth_cache_ttl (300 ms here, shorter than the poll: the TTL
//     is the bound).
func TestReplicasRevokedKeyRefusedEverywhere(t *testing.T) {
	for _, tc := range []struct {
		name           string
		pollOnly       bool
		ttl, refusedIn time.Duration
	}{
		{"listening", false, time.Minute, time.Second},
		{"polling", true, 300 * time.Millisecond, 300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := startGateway(t, gatewayOptions{postgres: pgtest.DSN(t), interval: 50 * time.Millisecond})
			b := a.replicaWith(func(c *config.Config) {
				c.Postgres.AuthCacheTTL = config.Duration(tc.ttl)
				c.Postgres.PollOnly = tc.pollOnly
			})
			key, k := a.issueKey("operator", map[string]any{"name": "shortlived", "role": "project", "tenant": "SHIP", "project": "MOH"})
			a.keys["shortlived"] = key
			if r := b.do("GET", groupsPath("SHIP", "MOH"), "shortlived", nil); r.status != http.StatusOK {
				t.Fatalf("B with a key issued through A: %d", r.status)
			}
			if r := a.do("DELETE", "/v1/keys/"+k.Id, "operator", nil); r.status != http.StatusOK {
				t.Fatalf("revoke through A: %d %s", r.status, r.body)
			}
			took := refusedWithin(t, b, "shortlived", time.Now(), tc.refusedIn)
			t.Logf("B refused the key %v after its revocation through A (bound %v)", took.Round(time.Millisecond), tc.refusedIn)
		})
	}
}

// refusedWithin sends r requests with the key named name until one is
// refused (401), and returns how long after revoked (when its revocation
// was answered) that request was sent. A request sent later than revoked
// + bound and not refused fails the test.
func refusedWithin(t *testing.T, r *gateway, name string, revoked time.Time, bound time.Duration) time.Duration {
	t.Helper()
	for {
		sent := time.Now()
		res := r.do("GET", groupsPath("SHIP", "MOH"), name, nil)
		switch {
		case res.status == http.StatusUnauthorized:
			return sent.Sub(revoked)
		case res.status != http.StatusOK:
			t.Fatalf("a request with the revoked key: %d %s", res.status, res.body)
		case sent.Sub(revoked) > bound:
			t.Fatalf("a request sent %v after the key's revocation was accepted: the bound is %v", sent.Sub(revoked), bound)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReplicasFollowTenantChanges: a tenant changed through A has its
// runtime rebuilt on B (signal groupgate.tenants, or the poll), while an
// unrelated change (a key issued) rebuilds nothing.
func TestReplicasFollowTenantChanges(t *testing.T) {
	a, b := startReplicas(t)
	before, _ := server.Runtime(b.srv, "SHIP")
	a.issueKey("operator", map[string]any{"name": "another", "role": "project", "tenant": "SHIP", "project": "MOH"})
	time.Sleep(3 * time.Second) // past a poll of the signals (2 s)
	if now, _ := server.Runtime(b.srv, "SHIP"); now != before {
		t.Fatal("B rebuilt SHIP's runtime for a key issued")
	}
	if r := a.do("PATCH", "/v1/tenants/SHIP", "operator", map[string]any{"disabled": true}); r.status != http.StatusOK {
		t.Fatalf("disable SHIP through A: %d %s", r.status, r.body)
	}
	testkit.Eventually(t, 10*time.Second, "B to drop the disabled tenant's runtime", func() bool {
		_, running := server.Runtime(b.srv, "SHIP")
		return !running
	})
}

// TestReadyzFollowsTheDatabase: /readyz is 503 while the database refuses
// connections, and 200 again when it is back; a backup is not served on
// PostgreSQL (501, pg_dump's job).
func TestReadyzFollowsTheDatabase(t *testing.T) {
	dsn := pgtest.DSN(t)
	g := startGateway(t, gatewayOptions{postgres: dsn, interval: 50 * time.Millisecond})
	if r := g.do("GET", "/readyz", "", nil); r.status != http.StatusOK {
		t.Fatalf("readyz: %d %s", r.status, r.body)
	}
	if r := g.do("GET", "/v1/backup", "operator", nil); r.status != http.StatusNotImplemented ||
		*r.problem(t).Type != "urn:groupgate:problem:backup-not-served" {
		t.Fatalf("backup on PostgreSQL: %d %s", r.status, r.body)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	db := strings.TrimPrefix(u.Path, "/")
	u.Path = "/postgres" // a database can only be closed from another
	admin, exec := dbAdmin(t, u.String())
	exec("ALTER DATABASE " + pgx.Identifier{db}.Sanitize() + " ALLOW_CONNECTIONS false")
	exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" + db + "'")
	testkit.Eventually(t, 15*time.Second, "readyz to report the database", func() bool {
		return g.do("GET", "/readyz", "", nil).status == http.StatusServiceUnavailable
	})
	exec("ALTER DATABASE " + pgx.Identifier{db}.Sanitize() + " ALLOW_CONNECTIONS true")
	admin.Close(t.Context())
	testkit.Eventually(t, 15*time.Second, "readyz to be ready again", func() bool {
		return g.do("GET", "/readyz", "", nil).status == http.StatusOK
	})
}

// TestAmbiguousCommitAnswers503: a write whose enqueue's COMMIT gets no
// answer (its database backend terminated while committing) answers 503
// with Retry-After and problem commit-unknown, for every operation that
// documents it; the create's retry with the same Idempotency-Key settles
// it: one operation, one group created upstream.
func TestAmbiguousCommitAnswers503(t *testing.T) {
	dsn := pgtest.DSN(t)
	g := startGateway(t, gatewayOptions{postgres: dsn, interval: 50 * time.Millisecond})
	users := techpasssim.DemoUsers(2)
	// Before the cut: an active group with a member, and a failed
	// operation (a create refused: the name is a TechBiz group's).
	g.createActive("SHIP/MOH", "kept")
	if r := g.do("POST", membersPath("SHIP", "MOH", "kept"), "SHIP/MOH", map[string]any{"users": []string{users[1].Email}}); r.status != http.StatusAccepted {
		t.Fatalf("add a member: %d %s", r.status, r.body)
	} else if op := g.accepted("add", r); g.await("SHIP/MOH", op.Id, 20*time.Second).State != api.Succeeded {
		t.Fatal("add a member failed")
	}
	if _, err := g.up.sim.CreateGroupDirect("SHIP", "SHIP:MOH:techbiz", "", false); err != nil {
		t.Fatal(err)
	}
	if err := g.up.sim.SetTechBiz("SHIP", "SHIP:MOH:techbiz", true); err != nil {
		t.Fatal(err)
	}
	failed := g.await("SHIP/MOH", g.create("SHIP/MOH", "techbiz").Id, 20*time.Second)
	if failed.State != api.Failed {
		t.Fatalf("create over a TechBiz group: %s", failed.State)
	}

	admin, exec := dbAdmin(t, dsn)
	// Every enqueue's COMMIT sleeps, through a deferred constraint trigger.
	sleepAtCommit(exec, "INSERT", "queue")
	send := func(method, path string, body any) response {
		var rd *bytes.Reader
		if body != nil {
			rd = bytes.NewReader(mustJSON(t, body))
		} else {
			rd = bytes.NewReader(nil)
		}
		req, err := http.NewRequest(method, g.base+path, rd)
		if err != nil {
			t.Fatal(err)
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		req.Header.Set("Authorization", "Bearer "+g.keys["SHIP/MOH"])
		req.Header.Set("Idempotency-Key", "unsure-"+method+path)
		return g.send(req)
	}
	kept := groupsPath("SHIP", "MOH") + "/kept"
	for _, w := range []struct {
		method, path string
		body         any
	}{
		{"POST", groupsPath("SHIP", "MOH"), map[string]string{"name": "unsure"}},
		{"PATCH", kept, map[string]string{"description": "changed"}},
		{"POST", kept + "/members", map[string]any{"users": []string{users[0].Email}}},
		{"POST", kept + "/members/remove", map[string]any{"users": []string{users[1].Email}}},
		{"DELETE", kept + "/members/" + users[1].ID, nil},
		{"POST", "/v1/operations/" + failed.Id + "/retry", nil},
		{"DELETE", kept, nil},
	} {
		r := cutAtCommit(t, admin, func() response { return send(w.method, w.path, w.body) })
		wantCommitUnknown(t, w.method+" "+w.path, r)
	}
	exec("DROP TRIGGER at_commit ON queue")
	op := g.accepted("the retry with the same key", send("POST", groupsPath("SHIP", "MOH"), map[string]string{"name": "unsure"}))
	// The create may have finished by now: a replay of a succeeded create
	// answers 201, with the same operation.
	r := send("POST", groupsPath("SHIP", "MOH"), map[string]string{"name": "unsure"})
	if r.status != http.StatusAccepted && r.status != http.StatusCreated {
		t.Fatalf("a second retry: %d %s", r.status, r.body)
	}
	var again api.Operation
	if r.decode(t, &again); again.Id != op.Id {
		t.Fatalf("retries answered two operations: %s and %s", op.Id, again.Id)
	}
	if got := g.await("SHIP/MOH", op.Id, 20*time.Second); got.State != api.Succeeded {
		t.Fatalf("the settled create: %s", got.State)
	}
	if n := g.up.stats("SHIP").CreatesByName["SHIP:MOH:unsure"]; n != 1 {
		t.Errorf("upstream creates of the group: %d, want 1", n)
	}
}

// TestLeaseMetrics: /metrics shows which replica leads which tenant and
// counts the handovers of its lease, from the database's lease table, so
// any replica reports the same.
func TestLeaseMetrics(t *testing.T) {
	dsn := pgtest.DSN(t)
	g := startGateway(t, gatewayOptions{postgres: dsn, interval: 50 * time.Millisecond})
	st, err := pgstore.Open(t.Context(), pgstore.Config{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// GHOST is no tenant of the server's, whose own leases are SHIP's and
	// OTHER's.
	l, ok, err := st.AcquireLease(t.Context(), "GHOST", "replica-a", time.Minute)
	if err != nil || !ok {
		t.Fatalf("acquire: %v %v", ok, err)
	}
	if err := st.ReleaseLease(t.Context(), l); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := st.AcquireLease(t.Context(), "GHOST", "replica-b", time.Minute); err != nil || !ok {
		t.Fatalf("acquire again: %v %v", ok, err)
	}
	r := g.do("GET", "/metrics", "operator", nil)
	if r.status != http.StatusOK {
		t.Fatalf("metrics: %d", r.status)
	}
	for _, want := range []string{
		`groupgate_tenant_leader{replica="replica-b",tenant="GHOST"} 1`,
		`groupgate_lease_handovers_total{tenant="GHOST"} 1`,
	} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(string(r.body), `replica="replica-a"`) {
		t.Error("metrics still show the released lease's holder as leader")
	}
}

// TestReplicasMirrorRequestReachesTheDispatcher: a mirror pass requested
// through B, which does not dispatch SHIP, is run by A's reconciler; what
// it finds is listed through B.
func TestReplicasMirrorRequestReachesTheDispatcher(t *testing.T) {
	a, b := startReplicas(t)
	if _, err := a.up.sim.CreateGroupDirect("SHIP", "SHIP:MOH:portal", "made in the portal", false); err != nil {
		t.Fatal(err)
	}
	var st api.MirrorStatus
	testkit.Eventually(t, 15*time.Second, "A's reconciler to be idle", func() bool {
		a.do("GET", "/v1/tenants/SHIP/mirror", "operator", nil).decode(t, &st)
		return !st.Running
	})
	passes := st.Passes
	if r := b.do("POST", "/v1/tenants/SHIP/mirror", "operator", nil); r.status != http.StatusAccepted {
		t.Fatalf("request a pass through B: %d %s", r.status, r.body)
	}
	testkit.Eventually(t, 15*time.Second, "A's reconciler to finish a pass", func() bool {
		a.do("GET", "/v1/tenants/SHIP/mirror", "operator", nil).decode(t, &st)
		return st.Passes > passes && !st.Running
	})
	if got := groupNames(b.list("SHIP/MOH")); !slices.Contains(got, "portal") {
		t.Fatalf("B's list after the pass: %v, want portal", got)
	}
}

// TestPostgresConfigServed: store: postgres is served, with the role's
// password read from password_file; the password appears in no log line
// and no answer.
func TestPostgresConfigServed(t *testing.T) {
	dsn, password := pgtest.PasswordDSN(t)
	file := filepath.Join(t.TempDir(), "pg-password")
	testkit.WriteFile(t, file, password+"\n")
	g := startGateway(t, gatewayOptions{postgres: dsn, interval: 50 * time.Millisecond, mutate: func(c *config.Config) {
		c.Postgres.PasswordFile = file
	}})
	if r := g.do("GET", "/readyz", "", nil); r.status != http.StatusOK {
		t.Fatalf("readyz: %d %s", r.status, r.body)
	}
	op := g.create("SHIP/MOH", "served")
	if got := g.await("SHIP/MOH", op.Id, 20*time.Second); got.State != api.Succeeded {
		t.Fatalf("create on PostgreSQL: %s", got.State)
	}
	g.stop()
	if strings.Contains(g.logs.String(), password) || strings.Contains(g.bodies.String(), password) {
		t.Error("the PostgreSQL password was logged or answered")
	}
}

// TestAmbiguousAdminCommitAnswers503: every administrative write whose
// COMMIT gets no answer answers 503 commit-unknown with Retry-After (every
// change of tenants, projects and keys moves the generation row, where the
// cut is made); the change is not stored, and a retry makes it.
func TestAmbiguousAdminCommitAnswers503(t *testing.T) {
	dsn := pgtest.DSN(t)
	g := startGateway(t, gatewayOptions{postgres: dsn, interval: 50 * time.Millisecond})
	_, k := g.issueKey("operator", map[string]any{"name": "doomed", "role": "project", "tenant": "SHIP", "project": "MOH"})
	admin, exec := dbAdmin(t, dsn)
	sleepAtCommit(exec, "UPDATE", "generations")
	writes := []struct {
		method, path string
		body         any
	}{
		{"POST", "/v1/tenants", map[string]string{"name": "FRESH"}},
		{"PATCH", "/v1/tenants/SHIP", map[string]any{"groupLimit": 77}},
		{"POST", "/v1/tenants/SHIP/projects", map[string]string{"name": "NEWP"}},
		{"PATCH", "/v1/tenants/SHIP/projects/MOH", map[string]any{"groupQuota": 7}},
		{"POST", "/v1/keys", map[string]string{"name": "cut", "role": "project", "tenant": "SHIP", "project": "MOH"}},
		{"DELETE", "/v1/keys/" + k.Id, nil},
	}
	for _, w := range writes {
		r := cutAtCommit(t, admin, func() response { return g.do(w.method, w.path, "operator", w.body) })
		wantCommitUnknown(t, w.method+" "+w.path, r)
	}
	exec("DROP TRIGGER at_commit ON generations")
	if r := g.do("GET", "/v1/tenants/FRESH", "operator", nil); r.status != http.StatusNotFound {
		t.Fatalf("the tenant whose create was cut: %d, want 404 (not stored)", r.status)
	}
	if r := g.do("POST", "/v1/tenants", "operator", map[string]string{"name": "FRESH"}); r.status != http.StatusCreated {
		t.Fatalf("the create retried: %d %s", r.status, r.body)
	}
}

// dbAdmin connects to the database at dsn for a test's own statements,
// closed at the test's end, and returns a function that runs one statement
// and fails the test if it fails.
func dbAdmin(t *testing.T, dsn string) (*pgx.Conn, func(sql string)) {
	t.Helper()
	admin, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close(context.WithoutCancel(t.Context())) })
	return admin, func(sql string) {
		t.Helper()
		if _, err := admin.Exec(t.Context(), sql); err != nil {
			t.Fatal(err)
		}
	}
}

// sleepAtCommit makes every COMMIT of a transaction that did event (INSERT,
// UPDATE, or several joined by OR) on table sleep for 30 s, through a
// deferred constraint trigger named at_commit, so the test can cut the
// connection while the commit's answer is outstanding (cutAtCommit).
func sleepAtCommit(exec func(sql string), event, table string) {
	exec("CREATE OR REPLACE FUNCTION at_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(30); RETURN NULL; END $$")
	exec("CREATE CONSTRAINT TRIGGER at_commit AFTER " + event + " ON " + table + " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION at_commit()")
}

// cutAtCommit runs send, whose request must reach a COMMIT that
// sleepAtCommit holds, terminates that COMMIT's backend (through admin)
// once it is under way, and returns the request's answer.
func cutAtCommit(t *testing.T, admin *pgx.Conn, send func() response) response {
	t.Helper()
	answered := make(chan response, 1)
	go func() { answered <- send() }()
	testkit.Eventually(t, 10*time.Second, "the write's COMMIT to be under way, then cut", func() bool {
		var n int
		if err := admin.QueryRow(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event = 'PgSleep' AND lower(query) = 'commit'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	})
	return <-answered
}

// wantCommitUnknown fails the test unless r, the answer to what, is 503
// with Retry-After and problem commit-unknown.
func wantCommitUnknown(t *testing.T, what string, r response) {
	t.Helper()
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" ||
		*r.problem(t).Type != "urn:groupgate:problem:commit-unknown" {
		t.Fatalf("%s whose commit was cut: %d (Retry-After %q) %s", what, r.status, r.header.Get("Retry-After"), r.body)
	}
}
