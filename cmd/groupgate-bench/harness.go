package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/groupgate/groupgate/api"
	"github.com/groupgate/groupgate/boltstore"
	"github.com/groupgate/groupgate/config"
	"github.com/groupgate/groupgate/internal/pgtest"
	"github.com/groupgate/groupgate/server"
	"github.com/groupgate/groupgate/techpass"
	"github.com/groupgate/groupgate/techpass/techpasssim"
	"github.com/groupgate/groupgate/tenants"
)

// tenantSpec is one tenant of the benchmark server: its projects, and the
// limits and pace it needs for its phase.
type tenantSpec struct {
	name       string
	projects   []string
	interval   time.Duration
	groupLimit int
}

// harness is the system under test: a TechPass simulator on a loopback
// listener, and the real server (server.New + Run) on a fresh store in a
// temporary directory, pointed at it.
type harness struct {
	sim      *techpasssim.Simulator
	simSrv   *httptest.Server
	arrivals *arrivals
	// simConns counts the connections the simulator accepted.
	simConns atomic.Int64
	// srvs are the replicas (one on bbolt), bases their base URLs; base
	// is the first's. do spreads requests over them in turn.
	srvs   []*server.Server
	bases  []string
	turn   atomic.Uint64
	base   string
	client *http.Client
	keys   map[string]string // "TENANT/PROJECT" -> API key
	dir    string
	store  string // the bbolt file; empty on PostgreSQL
	// pg is the throwaway PostgreSQL cluster, if the harness started one.
	pg *pgtest.Server

	cancel context.CancelFunc
	dones  []chan error
}

// startHarness starts the simulator and o.Replicas servers on o.Store with
// one tenant per spec. o.Interval and o.PaceGuard are the servers' global
// pace settings; every tenant's own interval overrides the first.
func startHarness(ctx context.Context, o Options, specs []tenantSpec) (_ *harness, err error) {
	interval, guard := o.Interval, o.PaceGuard
	dir, err := os.MkdirTemp("", "groupgate-bench-")
	if err != nil {
		return nil, err
	}
	h := &harness{dir: dir, keys: map[string]string{}, arrivals: newArrivals()}
	defer func() {
		if err != nil {
			h.close()
		}
	}()

	h.sim = techpasssim.New(techpasssim.Config{Interval: interval, Seed: 1})
	h.simSrv = httptest.NewUnstartedServer(h.arrivals.wrap(h.sim.Handler(), h.sim.Arrived))
	// Stamp arrivals when their bytes reach the socket, as TechPass would
	// (techpasssim.Simulator.Listener), not when this busy process gets to
	// the handler.
	h.simSrv.Listener = h.sim.Listener(h.simSrv.Listener)
	h.simSrv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			h.simConns.Add(1)
		}
	}
	h.simSrv.Start()

	cfg := config.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.AllowHTTP = true // a loopback benchmark
	if cfg.Store = o.Store; o.Store == config.StorePostgres {
		cfg.StorePath = ""
		if cfg.Postgres.DSN, err = h.postgres(ctx, o.PostgresDSN); err != nil {
			return nil, err
		}
		cfg.Postgres.MaxConns = o.MaxConns
	} else {
		h.store = filepath.Join(dir, "groupgate.db")
		cfg.StorePath = h.store
	}
	cfg.Interval = config.Duration(interval)
	cfg.PaceGuard = config.Duration(guard)
	// The per-credential rate limit (20/s by default) would refuse the load
	// itself: make it unreachable. Its check still runs on every request.
	cfg.RateLimit = config.RateLimitConfig{PerSecond: 1e9, Burst: 1 << 30}
	// The enqueue phase's tenants hold an operation at their gate (their
	// interval is an hour): let shutdown cut it off at once.
	cfg.ShutdownGrace = config.Duration(100 * time.Millisecond)
	// Production's level and format; the lines are encoded, then dropped.
	cfg.LogLevel, cfg.LogFormat = "info", "json"
	// An operator key reads /metrics (the rate phase's lateness).
	if cfg.OperatorKeyFile, err = h.withOperatorKey(); err != nil {
		return nil, err
	}
	for _, sp := range specs {
		tc, err := h.addTenant(sp)
		if err != nil {
			return nil, err
		}
		cfg.Tenants = append(cfg.Tenants, tc)
	}
	h.client = newClient()
	runCtx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	for range o.Replicas {
		srv, err := server.New(cfg, server.Options{Logger: server.NewLogger(cfg, io.Discard)})
		if err != nil {
			return nil, err
		}
		done := make(chan error, 1)
		h.srvs, h.bases, h.dones = append(h.srvs, srv), append(h.bases, srv.URL()), append(h.dones, done)
		go func() { done <- srv.Run(runCtx) }()
	}
	h.base = h.bases[0]
	for _, b := range h.bases {
		if err := h.waitReady(b); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// postgres returns the DSN of the database to use: dsn if set, else a new
// database on a throwaway cluster the harness starts (and close stops).
func (h *harness) postgres(ctx context.Context, dsn string) (string, error) {
	if dsn != "" {
		return dsn, nil
	}
	pg, err := pgtest.StartServer()
	if err != nil {
		return "", fmt.Errorf("start PostgreSQL: %w", err)
	}
	h.pg = pg
	return pg.NewDatabase(ctx)
}

// next returns the base URL of the replica whose turn it is.
func (h *harness) next() string {
	return h.bases[int(h.turn.Add(1)-1)%len(h.bases)]
}

// addTenant registers the tenant's namespace in the simulator, writes its
// credentials to files as a secret manager would, and issues a key per
// project.
func (h *harness) addTenant(sp tenantSpec) (config.TenantConfig, error) {
	lower := strings.ToLower(sp.name)
	secret, apiKey := randomSecret(), randomSecret()
	err := h.sim.AddNamespace(techpasssim.Namespace{
		Name: sp.name, DirectoryID: "dir-" + lower, ClientID: "client-" + lower,
		ClientSecret: secret, APIKeys: []string{apiKey},
		Interval: sp.interval, GroupLimit: sp.groupLimit,
	})
	if err != nil {
		return config.TenantConfig{}, err
	}
	secretFile := filepath.Join(h.dir, sp.name+".secret")
	keyFile := filepath.Join(h.dir, sp.name+".apikey")
	if err := errors.Join(
		os.WriteFile(secretFile, []byte(secret+"\n"), 0o600),
		os.WriteFile(keyFile, []byte(apiKey+"\n"), 0o600),
	); err != nil {
		return config.TenantConfig{}, err
	}
	tc := config.TenantConfig{
		Name: sp.name, Interval: config.Duration(sp.interval), GroupLimit: sp.groupLimit,
		TechPass: config.TechPassConfig{
			APIURL: h.simSrv.URL, TokenURL: techpass.TokenURL(h.simSrv.URL, "dir-"+lower),
			ClientID: "client-" + lower, ClientSecretFile: secretFile, APIKeyFile: keyFile,
		},
	}
	for _, p := range sp.projects {
		key, stored := tenants.NewKey()
		h.keys[sp.name+"/"+p] = key
		tc.Projects = append(tc.Projects, config.ProjectConfig{
			Name: p, Keys: []config.KeyConfig{{ID: stored.ID, Hash: tenants.HashString(stored.Hash)}},
		})
	}
	return tc, nil
}

func randomSecret() string {
	key, _ := tenants.NewKey()
	return key[len(key)-32:]
}

// newClient is the one HTTP client of every phase: keep-alive connections,
// enough idle ones for every concurrent worker, no compression.
func newClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			MaxIdleConns:        1024,
			MaxIdleConnsPerHost: 1024,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
		},
		Timeout: 2 * time.Minute,
	}
}

func (h *harness) waitReady(base string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := h.client.Get(base + "/readyz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("server not ready after 10s (last error %v)", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// close stops the servers, checks the store file's integrity (bbolt),
// stops the throwaway PostgreSQL cluster, and removes the temporary
// directory.
func (h *harness) close() error {
	var errs []error
	if h.cancel != nil {
		h.cancel()
	}
	for i, srv := range h.srvs {
		if i >= len(h.dones) {
			srv.Close() // never run
			continue
		}
		select {
		case err := <-h.dones[i]:
			errs = append(errs, err)
		case <-time.After(30 * time.Second):
			errs = append(errs, errors.New("server did not stop within 30s"))
		}
	}
	if h.store != "" && len(h.dones) > 0 {
		if st, err := boltstore.Open(h.store, time.Second); err != nil {
			errs = append(errs, fmt.Errorf("reopen store: %w", err))
		} else {
			errs = append(errs, st.Check(), st.Close())
		}
	}
	if h.pg != nil {
		errs = append(errs, h.pg.Stop())
	}
	if h.simSrv != nil {
		h.simSrv.Close()
	}
	if h.dir != "" {
		errs = append(errs, os.RemoveAll(h.dir))
	}
	return errors.Join(errs...)
}

// stats returns the simulator's statistics of a namespace.
func (h *harness) stats(ns string) techpasssim.NamespaceStats {
	return h.sim.Stats().Namespaces[ns]
}

// result is a finished exchange with the server.
type result struct {
	status int
	body   []byte
}

// do sends a request as project who ("TENANT/PROJECT") with an optional
// JSON body and extra headers (name, value pairs) to the replica whose
// turn it is.
func (h *harness) do(ctx context.Context, method, path, who string, body any, headers ...string) (result, error) {
	return h.doAt(ctx, h.next(), method, path, who, body, headers...)
}

// doAt is do, sent to the replica at base.
func (h *harness) doAt(ctx context.Context, base, method, path, who string, body any, headers ...string) (result, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return result{}, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return result{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+h.keys[who])
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return result{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return result{status: resp.StatusCode, body: b}, err
}

func groupsPath(who string) string {
	tenant, project, _ := strings.Cut(who, "/")
	return "/v1/tenants/" + tenant + "/projects/" + project + "/groups"
}

// create queues the creation of group name in project who and returns the
// accepted operation.
func (h *harness) create(ctx context.Context, who, name string) (api.Operation, error) {
	r, err := h.do(ctx, http.MethodPost, groupsPath(who), who, map[string]string{"name": name, "description": "benchmark group " + name})
	if err != nil {
		return api.Operation{}, fmt.Errorf("create %s in %s: %w", name, who, err)
	}
	if r.status != http.StatusAccepted {
		return api.Operation{}, fmt.Errorf("create %s in %s: status %d: %s", name, who, r.status, r.body)
	}
	var op api.Operation
	if err := json.Unmarshal(r.body, &op); err != nil {
		return api.Operation{}, fmt.Errorf("create %s in %s: decode: %w", name, who, err)
	}
	return op, nil
}

// await long-polls an operation (Prefer: wait) until it is final or ctx
// ends.
func (h *harness) await(ctx context.Context, who, id string) (api.Operation, error) {
	for {
		r, err := h.do(ctx, http.MethodGet, "/v1/operations/"+id, who, nil, "Prefer", "wait=10")
		if err != nil {
			return api.Operation{}, err
		}
		if r.status != http.StatusOK {
			return api.Operation{}, fmt.Errorf("get operation %s: status %d: %s", id, r.status, r.body)
		}
		var op api.Operation
		if err := json.Unmarshal(r.body, &op); err != nil {
			return api.Operation{}, err
		}
		switch op.State {
		case api.Succeeded, api.Failed, api.Cancelled:
			return op, nil
		}
	}
}

// cancelQueued cancels every operation in ids that is still queued, so a
// phase leaves no upstream work behind to disturb the next one. Operations
// already running or finished are left alone.
func (h *harness) cancelQueued(ctx context.Context, who string, ids []string) error {
	for _, id := range ids {
		r, err := h.do(ctx, http.MethodDelete, "/v1/operations/"+id, who, nil)
		if err != nil {
			return err
		}
		if r.status != http.StatusOK && r.status != http.StatusConflict {
			return fmt.Errorf("cancel %s: status %d: %s", id, r.status, r.body)
		}
	}
	return nil
}

// arrivals records when each Automation API request reached the simulator's
// listener, per namespace, so the benchmark can show the distribution of
// start-to-start gaps beside the simulator's own minimum.
type arrivals struct {
	mu    sync.Mutex
	times map[string][]time.Time
}

func newArrivals() *arrivals { return &arrivals{times: map[string][]time.Time{}} }

const automationPrefix = "/iam/namespace/"

func (a *arrivals) wrap(next http.Handler, arrived func(*http.Request) (time.Time, bool)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rest, ok := strings.CutPrefix(r.URL.Path, automationPrefix); ok {
			now, stamped := arrived(r)
			if !stamped {
				now = time.Now()
			}
			ns, _, _ := strings.Cut(rest, "/")
			a.mu.Lock()
			a.times[ns] = append(a.times[ns], now)
			a.mu.Unlock()
		}
		next.ServeHTTP(w, r)
	})
}

// slice returns a copy of namespace ns's arrivals [i, j) (0-based, in
// arrival order), clipped to those recorded.
func (a *arrivals) slice(ns string, i, j int) []time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	ts := a.times[ns]
	i, j = max(min(i, len(ts)), 0), max(min(j, len(ts)), 0)
	return append([]time.Time(nil), ts[i:j]...)
}

// count returns how many arrivals of namespace ns were recorded.
func (a *arrivals) count(ns string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.times[ns])
}
