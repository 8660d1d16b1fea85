package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate/api"
	"github.com/groupgate/groupgate/boltstore"
	"github.com/groupgate/groupgate/config"
	"github.com/groupgate/groupgate/internal/apitest"
	"github.com/groupgate/groupgate/internal/testkit"
	"github.com/groupgate/groupgate/server"
	"github.com/groupgate/groupgate/techpass"
	"github.com/groupgate/groupgate/techpass/techpasssim"
	"github.com/groupgate/groupgate/tenants"
)

// syncBuffer collects log output from concurrent goroutines.
type syncBuffer = testkit.Buffer

// upstream is a TechPass simulator on a real listener with one namespace
// per tenant, and the credentials the gateway reads from files.
type upstream struct {
	sim     *techpasssim.Simulator
	srv     *httptest.Server
	secrets map[string]string // every credential value, for canary checks
	tps     map[string]config.TechPassConfig
	// hookSecrets are the webhook secrets, by namespace; the files hold
	// them (see connectWebhooks).
	hookSecrets map[string]string
	hookFiles   map[string]string
}

func startUpstream(t *testing.T, interval time.Duration, groupLimit int, namespaces ...string) *upstream {
	t.Helper()
	return startUpstreamWith(t, interval, groupLimit, nil, namespaces...)
}

// startUpstreamWith is startUpstream with the simulator's configuration
// changed by mutate (when not nil).
func startUpstreamWith(t *testing.T, interval time.Duration, groupLimit int, mutate func(*techpasssim.Config), namespaces ...string) *upstream {
	t.Helper()
	simCfg := techpasssim.Config{Interval: interval, GroupLimit: groupLimit, Seed: 1, Users: techpasssim.DemoUsers(80), MemberPageSize: 20}
	if mutate != nil {
		mutate(&simCfg)
	}
	sim := techpasssim.New(simCfg)
	srv := httptest.NewUnstartedServer(sim.Handler())
	// Arrivals stamped when their bytes reached the socket, not when the
	// handler ran in this (race-instrumented, busy) process.
	srv.Listener = sim.Listener(srv.Listener)
	srv.Start()
	t.Cleanup(srv.Close)
	u := &upstream{sim: sim, srv: srv, secrets: map[string]string{}, tps: map[string]config.TechPassConfig{},
		hookSecrets: map[string]string{}, hookFiles: map[string]string{}}
	t.Cleanup(sim.StopWebhooks)
	dir := t.TempDir()
	for _, ns := range namespaces {
		secret, apiKey := "secret-"+ns+"-"+randomWord(t), "apikey-"+ns+"-"+randomWord(t)
		if err := sim.AddNamespace(techpasssim.Namespace{
			Name: ns, DirectoryID: "dir-" + strings.ToLower(ns), ClientID: "client-" + strings.ToLower(ns),
			ClientSecret: secret, APIKeys: []string{apiKey},
		}); err != nil {
			t.Fatal(err)
		}
		secretFile := filepath.Join(dir, ns+".secret")
		keyFile := filepath.Join(dir, ns+".apikey")
		testkit.WriteFile(t, secretFile, secret)
		testkit.WriteFile(t, keyFile, apiKey)
		u.secrets[ns+" client secret"] = secret
		u.secrets[ns+" api key"] = apiKey
		hookSecret, hookFile := "whsec-"+ns+"-"+randomWord(t), filepath.Join(dir, ns+".webhook-secret")
		testkit.WriteFile(t, hookFile, hookSecret)
		u.secrets[ns+" webhook secret"], u.hookSecrets[ns], u.hookFiles[ns] = hookSecret, hookSecret, hookFile
		u.tps[ns] = config.TechPassConfig{
			APIURL: srv.URL, TokenURL: techpass.TokenURL(srv.URL, "dir-"+strings.ToLower(ns)),
			ClientID: "client-" + strings.ToLower(ns), ClientSecretFile: secretFile, APIKeyFile: keyFile,
			WebhookSecretFile: hookFile,
		}
	}
	return u
}

func (u *upstream) stats(ns string) techpasssim.NamespaceStats { return u.sim.Stats().Namespaces[ns] }

func randomWord(t *testing.T) string {
	key, _ := tenants.NewKey()
	return strings.ReplaceAll(key[len(key)-16:], "-", "x")
}

// gateway is a running server with its upstream and a key per project.
type gateway struct {
	t      *testing.T
	srv    *server.Server
	up     *upstream
	base   string
	http   *http.Client
	logs   *syncBuffer
	keys   map[string]string // "SHIP/MOH" -> key
	bodies *syncBuffer       // every response body seen
	store  string
	// cfg is the server's configuration (replica starts another on it).
	cfg config.Config
	// bad marks every request as deliberately not conforming to
	// openapi.yaml (see badInput).
	bad    bool
	cancel context.CancelFunc
	done   chan error
}

type gatewayOptions struct {
	interval   time.Duration
	groupLimit int
	// projects per tenant; default SHIP: MOH, MOE and OTHER: MOH.
	projects map[string][]string
	mutate   func(*config.Config)
	store    string    // reuse a store file
	up       *upstream // reuse a simulator (with the same projects)
	// sim changes the simulator's configuration, when set.
	sim func(*techpasssim.Config)
	// resolver resolves JWKS host names (server.Options.Resolver).
	resolver *net.Resolver
	// now is the server's clock (server.Options.Now); nil for the real one.
	now func() time.Time
	// postgres, if set, is the DSN of the PostgreSQL store to use instead
	// of a bbolt file (replicas_test.go).
	postgres string
}

// startGateway runs the real server on a loopback port against a fresh
// simulator. Every response it gives through g.do is validated against
// openapi.yaml.
func startGateway(t *testing.T, o gatewayOptions) *gateway {
	t.Helper()
	if o.interval == 0 {
		o.interval = 20 * time.Millisecond
	}
	if o.projects == nil {
		o.projects = map[string][]string{"SHIP": {"MOH", "MOE"}, "OTHER": {"MOH"}}
	}
	var names []string
	for ns := range o.projects {
		names = append(names, ns)
	}
	up := o.up
	if up == nil {
		up = startUpstreamWith(t, o.interval, o.groupLimit, o.sim, names...)
	}
	cfg := config.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.AllowHTTP = true
	cfg.StorePath = o.store
	if cfg.StorePath == "" {
		cfg.StorePath = filepath.Join(t.TempDir(), "groupgate.db")
	}
	cfg.Interval = config.Duration(o.interval)
	// The simulator stamps arrivals when their bytes reach its socket; the
	// gate spaces requests from when their headers were written into the
	// connection's buffer, which a loaded race-instrumented process can
	// flush some milliseconds later (up to 21.6 ms measured): the guard
	// covers that, and these tests' timings (slot = interval + guard) were
	// written for it.
	cfg.PaceGuard = config.Duration(20 * time.Millisecond)
	if o.interval >= time.Second {
		cfg.PaceGuard = config.Duration(10 * time.Millisecond)
	}
	cfg.LogLevel = "debug"
	// Reconcile passes make upstream requests; tests that want one ask.
	cfg.ReconcileEvery = 0
	// Tests poll quickly; the rate limit has its own test.
	cfg.RateLimit = config.RateLimitConfig{PerSecond: 10000, Burst: 10000}
	cfg.Retry.MaxFailures, cfg.Retry.BaseDelay, cfg.Retry.MaxDelay = 3, config.Duration(o.interval), config.Duration(10*o.interval)
	if o.groupLimit > 0 {
		cfg.GroupLimit = o.groupLimit
	}
	keys := map[string]string{}
	for ns, projects := range o.projects {
		tc := config.TenantConfig{Name: ns, TechPass: up.tps[ns]}
		for _, p := range projects {
			key, stored := tenants.NewKey()
			keys[ns+"/"+p] = key
			tc.Projects = append(tc.Projects, config.ProjectConfig{Name: p, Keys: []config.KeyConfig{{ID: stored.ID, Hash: tenants.HashString(stored.Hash)}}})
		}
		cfg.Tenants = append(cfg.Tenants, tc)
	}
	// Every gateway has a bootstrap operator key and a key-encryption key.
	secrets := t.TempDir()
	opKey, _ := tenants.NewKey()
	keys["operator"] = opKey
	cfg.OperatorKeyFile = filepath.Join(secrets, "operator.key")
	testkit.WriteFile(t, cfg.OperatorKeyFile, opKey)
	cfg.KEKFile = filepath.Join(secrets, "kek")
	testkit.WriteFile(t, cfg.KEKFile, strings.Repeat("5a", 32))
	if o.postgres != "" {
		// store_path stays set, unused (the built-in simulator's secrets
		// go to a temporary directory).
		cfg.Store, cfg.Postgres.DSN = config.StorePostgres, o.postgres
	}
	if o.mutate != nil {
		o.mutate(&cfg)
	}
	logs := &syncBuffer{}
	srv, err := server.New(cfg, server.Options{Logger: server.NewLogger(cfg, logs), Resolver: o.resolver, Now: o.now})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &gateway{
		t: t, srv: srv, up: up, base: srv.URL(), logs: logs, keys: keys, bodies: &syncBuffer{},
		http: apitest.NewClient(t, http.DefaultTransport), store: cfg.StorePath, cfg: cfg, cancel: cancel, done: make(chan error, 1),
	}
	if o.postgres != "" {
		g.store = "" // no bbolt file to check at the end
	}
	go func() { g.done <- srv.Run(ctx) }()
	t.Cleanup(g.stop)
	return g
}

// stop shuts the server down and checks the store file's integrity.
func (g *gateway) stop() {
	if g.cancel == nil {
		return
	}
	g.cancel()
	g.cancel = nil
	select {
	case err := <-g.done:
		if err != nil {
			g.t.Errorf("server stopped with error: %v", err)
		}
	case <-time.After(30 * time.Second):
		g.t.Fatal("server did not stop within 30s")
	}
	if g.store == "" {
		return // PostgreSQL
	}
	st, err := boltstore.Open(g.store, time.Second)
	if err != nil {
		g.t.Fatalf("reopen store: %v", err)
	}
	defer st.Close()
	if err := st.Check(); err != nil {
		g.t.Errorf("store integrity: %v", err)
	}
}

// response is a finished HTTP exchange.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func (r response) problem(t *testing.T) api.Problem {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("content type %q, want application/problem+json (body %s)", ct, r.body)
	}
	var p api.Problem
	r.decode(t, &p)
	return p
}

// do sends a request with the key of project ("SHIP/MOH"; "" for none, or a
// literal "Bearer ..." header value) and a JSON body (nil for none).
func (g *gateway) do(method, path, who string, body any) response {
	g.t.Helper()
	var rd io.Reader
	if body != nil {
		b, ok := body.([]byte)
		if !ok {
			var err error
			if b, err = json.Marshal(body); err != nil {
				g.t.Fatal(err)
			}
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, g.base+path, rd)
	if err != nil {
		g.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	switch {
	case strings.HasPrefix(who, "Bearer ") || strings.HasPrefix(who, "Basic "):
		req.Header.Set("Authorization", who)
	case who != "":
		key, ok := g.keys[who]
		if !ok {
			g.t.Fatalf("no key for %s", who)
		}
		req.Header.Set("Authorization", "Bearer "+key)
	}
	return g.send(req)
}

// badInput returns g for sending requests that are deliberately not what
// openapi.yaml allows: their answers are still validated, the requests not.
func (g *gateway) badInput() *gateway {
	c := *g
	c.bad = true
	return &c
}

func (g *gateway) send(req *http.Request) response {
	g.t.Helper()
	if g.bad {
		req = apitest.BadInput(req)
	}
	resp, err := g.http.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		g.t.Fatal(err)
	}
	_, _ = g.bodies.Write(b)
	_, _ = fmt.Fprintln(g.bodies, resp.Header)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func groupsPath(tenant, project string) string {
	return "/v1/tenants/" + tenant + "/projects/" + project + "/groups"
}

// accepted returns the operation r accepted; what names the request in
// the failure when r is not a 202.
func (g *gateway) accepted(what string, r response) api.Operation {
	g.t.Helper()
	if r.status != http.StatusAccepted {
		g.t.Fatalf("%s: status %d: %s", what, r.status, r.body)
	}
	var op api.Operation
	r.decode(g.t, &op)
	return op
}

// create queues a group create and returns the accepted operation.
func (g *gateway) create(who, name string) api.Operation {
	g.t.Helper()
	tenant, project, _ := strings.Cut(who, "/")
	r := g.do("POST", groupsPath(tenant, project), who, map[string]string{"name": name, "description": "group " + name})
	op := g.accepted("create "+name, r)
	if loc := r.header.Get("Location"); loc != "/v1/operations/"+op.Id {
		g.t.Fatalf("Location %q, want /v1/operations/%s", loc, op.Id)
	}
	return op
}

// createThenDelete queues perTenant creates of groups <prefix>00, <prefix>01...
// in each project of whos (tenant/project), waits for all of them to
// succeed, then deletes them all the same way. It returns every final
// operation, the creates first.
func (g *gateway) createThenDelete(whos []string, prefix string, perTenant int, within time.Duration) []api.Operation {
	g.t.Helper()
	var done []api.Operation
	for _, what := range []string{"create", "delete"} {
		type queued struct{ who, id string }
		var ops []queued
		for i := range perTenant {
			for _, who := range whos {
				name := fmt.Sprintf("%s%02d", prefix, i)
				tenant, project, _ := strings.Cut(who, "/")
				var op api.Operation
				if what == "create" {
					op = g.create(who, name)
				} else {
					op = g.accepted("delete "+name, g.do("DELETE", groupsPath(tenant, project)+"/"+name, who, nil))
				}
				ops = append(ops, queued{who, op.Id})
			}
		}
		for _, op := range ops {
			got := g.await(op.who, op.id, within)
			if got.State != api.Succeeded {
				g.t.Fatalf("%s %s of %s: %s after %d attempts (%s)", what, op.id, op.who, got.State, got.Attempts, errorOf(got))
			}
			done = append(done, got)
		}
	}
	return done
}

// await polls an operation until it is final or the deadline passes.
func (g *gateway) await(who, id string, within time.Duration) api.Operation {
	g.t.Helper()
	var op api.Operation
	final := testkit.Poll(within, 10*time.Millisecond, func() bool {
		r := g.do("GET", "/v1/operations/"+id, who, nil)
		if r.status != http.StatusOK {
			g.t.Fatalf("get operation %s: %d %s", id, r.status, r.body)
		}
		op = api.Operation{}
		r.decode(g.t, &op)
		return op.State == api.Succeeded || op.State == api.Failed
	})
	if !final {
		g.t.Fatalf("operation %s still %s after %v", id, op.State, within)
	}
	return op
}

func (g *gateway) list(who string) []api.Group {
	g.t.Helper()
	tenant, project, _ := strings.Cut(who, "/")
	r := g.do("GET", groupsPath(tenant, project), who, nil)
	if r.status != http.StatusOK {
		g.t.Fatalf("list: %d %s", r.status, r.body)
	}
	var gl api.GroupList
	r.decode(g.t, &gl)
	return gl.Groups
}

// quietLogger discards logs.
func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func bytesReader(b []byte) io.Reader {
	if b == nil {
		return nil
	}
	return bytes.NewReader(b)
}
