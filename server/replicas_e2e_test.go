package server_test

// The end-to-end test of several replicas (issue 13): three real groupgate
// processes on one throwaway PostgreSQL database, in front of one TechPass
// simulator in this process, while one replica is SIGKILLed, another is
// frozen with SIGSTOP and replacements start.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/groupgate/groupgate/api"
	"github.com/groupgate/groupgate/config"
	"github.com/groupgate/groupgate/internal/apitest"
	"github.com/groupgate/groupgate/internal/pgtest"
	"github.com/groupgate/groupgate/internal/testkit"
	"github.com/groupgate/groupgate/techpass/techpasssim"
	"github.com/groupgate/groupgate/tenants"
)

const (
	// e2eInterval is the upstream interval, at the simulator and in the
	// replicas' configuration.
	e2eInterval = 150 * time.Millisecond
	// e2eLeaseTTL is the replicas' lease time to live (postgres.lease_ttl).
	e2eLeaseTTL = time.Second
	// e2eFailover bounds the time from the leader's SIGKILL to the next
	// upstream request start: the lease's time to live plus two intervals,
	// 1.3 s here.
	e2eFailover = e2eLeaseTTL + 2*e2eInterval
	// e2eWriters and e2ePerWriter: that many clients each ask for that many
	// groups, one every e2eWriteEvery, so writes go on through the kill and
	// the freeze and a backlog stands upstream. With the held create, 46
	// groups: within TechPass's default limit of 50 per namespace.
	e2eWriters    = 5
	e2ePerWriter  = 9
	e2eWriteEvery = 400 * time.Millisecond
)

// TestReplicasSurviveKillAndFreeze runs three groupgate processes (the
// built binary) on one PostgreSQL database in front of one simulator at a
// 150 ms interval, with a 1 s lease time to live. Five clients spread
// creates with Idempotency-Keys over the live replicas, retrying a 503, a
// 429, a connection error or a timeout with the same key on the next
// replica. With a backlog standing, the replica leading the tenant is
// SIGKILLed; the new leader is then frozen with SIGSTOP for three
// intervals and resumed, and a replacement starts.
//
// It requires: the next upstream start after the leader's death within the
// lease's TTL plus two intervals (1.3 s); the simulator never saw a pacing
// violation, more than one request in flight or a gap under the interval,
// and created every group exactly once; every accepted create succeeded; a
// create held with Prefer: wait on a replica that does not lead is answered
// 201; a key revoked through one replica is refused by another within
// postgres.auth_cache_ttl (1 s) of its revocation.
func TestReplicasSurviveKillAndFreeze(t *testing.T) {
	dsn := pgtest.DSN(t)
	rig := newReplicaRig(t, dsn)
	for range 3 {
		rig.start()
	}

	w := rig.startWriters()

	// Wait for a backlog under way: some groups created upstream, more
	// queued behind them.
	testkit.Eventually(t, 30*time.Second, "3 groups created upstream", func() bool {
		return len(rig.up.stats("SHIP").CreatesByName) >= 3
	})
	leader := rig.leader()
	t.Logf("SIGKILL the leader, replica %s (pid %d)", leader.name, leader.cmd.Process.Pid)
	killed := time.Now()
	// The clients go on sending to it (and retry elsewhere); the rig no
	// longer counts it.
	rig.setDown(leader)
	if err := leader.cmd.Process.Kill(); err != nil {
		t.Fatalf("SIGKILL: %v", err)
	}
	// Starts within 20 ms of the kill are the dead leader's last request
	// still reaching the simulator.
	if at := rig.nextStartAfter(killed.Add(20*time.Millisecond), e2eFailover+10*time.Second); at.IsZero() {
		t.Errorf("no upstream request started within %v of the leader's death (is postgres.lease_ttl, %v here, applied to the leases?)", e2eFailover+10*time.Second, e2eLeaseTTL)
	} else {
		failover := at.Sub(killed)
		t.Logf("next upstream start %v after the leader's death (bound %v)", failover.Round(time.Millisecond), e2eFailover)
		if failover > e2eFailover {
			t.Errorf("the next upstream start came %v after the leader's death, want within %v (lease TTL %v + 2 intervals)", failover, e2eFailover, e2eLeaseTTL)
		}
	}

	// Freeze the new leader for three intervals, then resume it, while the
	// clients still write: their requests to it time out and are retried
	// elsewhere with the same key, while it may still answer them after it
	// resumes.
	frozen := rig.leader()
	if w.finished() {
		t.Fatal("the clients finished writing before the freeze; the test needs writes during it")
	}
	t.Logf("SIGSTOP the new leader, replica %s, for %v", frozen.name, 3*e2eInterval)
	rig.setDown(frozen)
	if err := frozen.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP: %v", err)
	}
	time.Sleep(3 * e2eInterval)
	if err := frozen.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatalf("SIGCONT: %v", err)
	}
	rig.setUp(frozen)
	rig.start() // the replacement of the dead one
	if w.finished() {
		t.Log("the clients finished writing while the replacement started")
	}

	accepted := w.wait()

	// Every accepted create succeeds, each group created exactly once.
	g := rig.client(rig.live()[0])
	for name, id := range accepted {
		op := g.await("SHIP/MOH", id, 30*time.Second)
		if op.State != api.Succeeded {
			t.Errorf("create of %s (%s): %s %+v", name, id, op.State, op.Error)
		}
	}
	// A create held with Prefer: wait on a replica that does not lead.
	lead := rig.leader()
	var follower *replicaProcess
	for _, p := range rig.live() {
		if p != lead {
			follower = p
			break
		}
	}
	req, err := http.NewRequest("POST", follower.base+groupsPath("SHIP", "MOH"), bytes.NewReader(mustJSON(t, map[string]string{"name": "waited"})))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+rig.key)
	req.Header.Set("Prefer", "wait=20")
	held := time.Now()
	if r := rig.client(follower).send(req); r.status != http.StatusCreated {
		t.Errorf("create held with Prefer: wait on replica %s, which does not lead (%s does): %d %s, want 201", follower.name, lead.name, r.status, r.body)
	}
	took := time.Since(held)
	t.Logf("Prefer: wait on replica %s (not leading), the queue empty: answered after %v", follower.name, took.Round(time.Millisecond))
	if took > 10*time.Second {
		t.Errorf("the held create was answered after %v, want well within 10s with an empty queue", took)
	}

	// A key revoked through one replica is refused by another.
	issuer, other := rig.client(lead), rig.client(follower)
	key, k := issuer.issueKey("operator", map[string]any{"name": "e2e-revoked", "role": "project", "tenant": "SHIP", "project": "MOH"})
	issuer.keys["revoked"], other.keys["revoked"] = key, key
	if r := other.do("GET", groupsPath("SHIP", "MOH"), "revoked", nil); r.status != http.StatusOK {
		t.Fatalf("replica %s with a key issued through %s: %d %s", follower.name, lead.name, r.status, r.body)
	}
	if r := issuer.do("DELETE", "/v1/keys/"+k.Id, "operator", nil); r.status != http.StatusOK {
		t.Fatalf("revoke through replica %s: %d %s", lead.name, r.status, r.body)
	}
	took = refusedWithin(t, other, "revoked", time.Now(), config.DefaultAuthCacheTTL)
	t.Logf("replica %s refused the key %v after its revocation through %s (bound: postgres.auth_cache_ttl, %v)",
		follower.name, took.Round(time.Millisecond), lead.name, config.DefaultAuthCacheTTL)

	want := []string{"SHIP:MOH:waited"}
	for name := range accepted {
		want = append(want, "SHIP:MOH:"+name)
	}
	slices.Sort(want)
	var listed []string
	for _, gr := range rig.client(follower).list("SHIP/MOH") {
		listed = append(listed, gr.FullName)
	}
	slices.Sort(listed)
	if !slices.Equal(listed, want) {
		t.Errorf("replica %s lists %v, want %v", follower.name, listed, want)
	}
	var upstream []string
	for _, ug := range rig.up.sim.Groups("SHIP") {
		upstream = append(upstream, ug.Name)
	}
	slices.Sort(upstream)
	if !slices.Equal(upstream, want) {
		t.Errorf("simulator holds %v, want exactly %v", upstream, want)
	}
	st := rig.up.stats("SHIP")
	for name, n := range st.CreatesByName {
		if n != 1 {
			t.Errorf("simulator created %s %d times, want 1", name, n)
		}
	}
	if st.DuplicateCreates != 0 {
		t.Errorf("simulator refused %d creates as duplicates, want 0 (a new leader must look before it replays a create)", st.DuplicateCreates)
	}
	if st.Violations != 0 || st.MaxInFlight > 1 {
		t.Errorf("simulator saw %d violations and at most %d requests in flight, want 0 and 1", st.Violations, st.MaxInFlight)
	}
	gap, _ := st.MinGap()
	if gap < e2eInterval {
		t.Errorf("minimum gap between upstream requests %v, want >= %v", gap, e2eInterval)
	}
	t.Logf("simulator: %d requests, minimum gap %v (interval %v), %d groups; %d creates accepted after retries %v",
		st.Requests, gap.Round(time.Millisecond), e2eInterval, len(upstream), len(accepted), w.retries())

	for _, p := range rig.live() {
		rig.stopGracefully(p)
	}
}

// replicaRig is one test's database, simulator, binary and replicas.
type replicaRig struct {
	t     *testing.T
	dsn   string
	up    *upstream
	bin   string
	dir   string
	cfg   string // the configuration, but for listen
	key   string // the API key of SHIP/MOH
	opKey string

	mu    sync.Mutex
	procs []*replicaProcess
}

// replicaProcess is one groupgate process of the rig.
type replicaProcess struct {
	*gatewayProcess
	n    int
	name string // its name among the replicas (the replicas table)
	base string
	up   bool // serving: neither killed nor frozen
}

// newReplicaRig builds the binary, starts the simulator with upstream
// latency and writes the configuration the replicas share.
func newReplicaRig(t *testing.T, dsn string) *replicaRig {
	t.Helper()
	dir := t.TempDir()
	rig := &replicaRig{t: t, dsn: dsn, dir: dir, bin: buildGroupgate(t, dir), up: startUpstream(t, e2eInterval, 0, "SHIP")}
	if err := rig.up.sim.SetFaults(techpasssim.Faults{LatencyMin: 20 * time.Millisecond, LatencyMax: 80 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	key, stored := tenants.NewKey()
	rig.key = key
	rig.opKey, _ = tenants.NewKey()
	opFile, kekFile := filepath.Join(dir, "operator.key"), filepath.Join(dir, "kek")
	testkit.WriteFile(t, opFile, rig.opKey)
	testkit.WriteFile(t, kekFile, strings.Repeat("5a", 32))
	tp := rig.up.tps["SHIP"]
	// The pace guard is crash_test.go's, for the same reason: the
	// simulator stamps arrivals in this race-instrumented process while
	// three gateways and PostgreSQL share 2 cores.
	rig.cfg = fmt.Sprintf(`store: postgres
postgres:
  dsn: %q
  max_conns: 4
  lease_ttl: %s
interval: %s
pace_guard: %s
operator_key_file: %q
kek_file: %q
%s`, dsn, e2eLeaseTTL, e2eInterval, crashPaceGuard, opFile, kekFile, processYAML(tp, stored))
	return rig
}

// start runs one more replica on a port of its own, waits until it is
// ready (/readyz) and has joined the replicas (its row in the replicas
// table, which names it).
func (r *replicaRig) start() *replicaProcess {
	r.t.Helper()
	n := len(r.procs) + 1
	addr := freeAddr(r.t)
	config := filepath.Join(r.dir, fmt.Sprintf("replica%d.yaml", n))
	testkit.WriteFile(r.t, config, fmt.Sprintf("listen: %q\n", addr)+r.cfg)
	before := r.replicaNames()

	cmd := exec.Command(r.bin, "-config", config)
	cmd.Dir = r.dir
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "GROUPGATE_") })
	gp := &gatewayProcess{cmd: cmd, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = gp.stdout, gp.stderr
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("start replica %d: %v", n, err)
	}
	go func() {
		gp.err = cmd.Wait()
		close(gp.done)
	}()
	p := &replicaProcess{gatewayProcess: gp, n: n, base: "http://" + addr}
	r.t.Cleanup(func() {
		select {
		case <-gp.done:
		default:
			_ = cmd.Process.Signal(syscall.SIGCONT)
			_ = cmd.Process.Kill()
			<-gp.done
		}
		if r.t.Failed() {
			r.t.Logf("replica %d %s (%v)\nstdout:\n%s\nstderr:\n%s", n, p.name, gp.err, gp.stdout, gp.stderr)
		}
	})

	hc := apitest.NewClient(r.t, &http.Transport{DisableKeepAlives: true})
	hc.Timeout = time.Second
	ready := testkit.Poll(30*time.Second, 20*time.Millisecond, func() bool {
		select {
		case <-gp.done:
			r.t.Fatalf("replica %d exited before it was ready: %v\nstderr:\n%s", n, gp.err, gp.stderr)
		default:
		}
		resp, err := hc.Get(p.base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if !ready {
		r.t.Fatalf("replica %d was not ready within 30s\nstderr:\n%s", n, gp.stderr)
	}
	testkit.Eventually(r.t, 10*time.Second, fmt.Sprintf("replica %d in the replicas table", n), func() bool {
		for _, name := range r.replicaNames() {
			if !slices.Contains(before, name) {
				p.name = name
				return true
			}
		}
		return false
	})
	r.mu.Lock()
	p.up = true
	r.procs = append(r.procs, p)
	r.mu.Unlock()
	return p
}

// query runs one query on the database and returns its first column;
// nothing before the first replica created the schema.
func (r *replicaRig) query(sql string) []string {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, r.dsn)
	if err != nil {
		r.t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, sql)
	if err == nil {
		var out []string
		out, err = pgx.CollectRows(rows, pgx.RowTo[string])
		if err == nil {
			return out
		}
	}
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok && pgErr.Code == "42P01" && len(r.procs) == 0 {
		return nil // undefined_table: no replica has started yet
	}
	r.t.Fatal(err)
	return nil
}

// replicaNames returns the names of the replicas alive by their heartbeat.
func (r *replicaRig) replicaNames() []string {
	return r.query("SELECT name FROM replicas WHERE expires > now()")
}

// leader waits for a live lease of tenant SHIP held by a replica serving
// now, and returns that replica.
func (r *replicaRig) leader() *replicaProcess {
	r.t.Helper()
	var lead *replicaProcess
	testkit.Eventually(r.t, 10*time.Second, "a serving replica to lead SHIP", func() bool {
		holders := r.query("SELECT holder FROM leases WHERE tenant = 'SHIP' AND holder <> '' AND expires > now()")
		for _, p := range r.live() {
			if slices.Contains(holders, p.name) {
				lead = p
				return true
			}
		}
		return false
	})
	return lead
}

// all returns every replica started, killed and frozen ones too: the
// clients keep sending to them, as to an address that has gone away.
func (r *replicaRig) all() []*replicaProcess {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.procs)
}

// live returns the replicas serving now.
func (r *replicaRig) live() []*replicaProcess {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*replicaProcess
	for _, p := range r.procs {
		if p.up {
			out = append(out, p)
		}
	}
	return out
}

func (r *replicaRig) setDown(p *replicaProcess) { r.mu.Lock(); p.up = false; r.mu.Unlock() }
func (r *replicaRig) setUp(p *replicaProcess)   { r.mu.Lock(); p.up = true; r.mu.Unlock() }

// nextStartAfter polls the simulator until an upstream request starts
// after t and returns when it started; the zero time if none did within.
func (r *replicaRig) nextStartAfter(t time.Time, within time.Duration) time.Time {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if ls := r.up.stats("SHIP").LastStart; ls != nil && ls.After(t) {
			return *ls
		}
		time.Sleep(2 * time.Millisecond)
	}
	return time.Time{}
}

// client returns a client of p's API (responses validated against
// openapi.yaml).
func (r *replicaRig) client(p *replicaProcess) *gateway {
	tr := &http.Transport{}
	r.t.Cleanup(tr.CloseIdleConnections)
	return &gateway{
		t: r.t, up: r.up, base: p.base, keys: map[string]string{crashProject: r.key, "operator": r.opKey},
		http: apitest.NewClient(r.t, tr), bodies: &syncBuffer{},
	}
}

// stopGracefully sends SIGTERM and requires exit 0 within 5 s.
func (r *replicaRig) stopGracefully(p *replicaProcess) {
	r.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		r.t.Fatalf("SIGTERM: %v", err)
	}
	exited, err := p.waitExit(5 * time.Second)
	if !exited {
		r.t.Errorf("replica %s did not exit within 5s of SIGTERM", p.name)
		return
	}
	if err != nil {
		r.t.Errorf("replica %s exited with %v after SIGTERM, want 0", p.name, err)
	}
}

// writers are the clients creating groups through the replicas.
type writers struct {
	wg sync.WaitGroup
	mu sync.Mutex
	// accepted maps each group name to its operation's id.
	accepted map[string]string
	// retried counts the retries by cause: a status, "connection" (refused
	// or reset: a dead replica) or "timeout" (a frozen one).
	retried map[string]int
	done    int // writers finished
}

// startWriters starts the clients: each creates e2ePerWriter groups, one
// every e2eWriteEvery, each with its own Idempotency-Key, sent to every
// replica started in turn (killed and frozen ones too); a 503, a 429, a
// connection error or a timeout is retried with the same key on the next.
func (r *replicaRig) startWriters() *writers {
	w := &writers{accepted: map[string]string{}, retried: map[string]int{}}
	hc := apitest.NewClient(r.t, &http.Transport{})
	// A frozen replica answers when it resumes, if at all: give up before.
	hc.Timeout = 2 * e2eInterval
	for i := range e2eWriters {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			defer func() { w.mu.Lock(); w.done++; w.mu.Unlock() }()
			turn := i
			for j := range e2ePerWriter {
				name := fmt.Sprintf("e2e-%d-%02d", i, j)
				if err := r.createUntilAccepted(hc, w, name, &turn); err != nil {
					r.t.Errorf("create %s: %v", name, err)
					return
				}
				time.Sleep(e2eWriteEvery)
			}
		}()
	}
	return w
}

// createUntilAccepted sends one create with one Idempotency-Key until a
// replica accepts it (202), and records its operation.
func (r *replicaRig) createUntilAccepted(hc *http.Client, w *writers, name string, turn *int) error {
	body := mustJSON(r.t, map[string]string{"name": name, "description": "group " + name})
	idem := rand.Text()
	deadline := time.Now().Add(30 * time.Second)
	for {
		all := r.all()
		p := all[*turn%len(all)]
		*turn++
		req, err := http.NewRequest("POST", p.base+groupsPath("SHIP", "MOH"), bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+r.key)
		req.Header.Set("Idempotency-Key", idem)
		status, b, err := sendRaw(hc, req)
		switch {
		case err == nil && status == http.StatusAccepted:
			var op api.Operation
			if err := json.Unmarshal(b, &op); err != nil {
				return err
			}
			w.mu.Lock()
			w.accepted[name] = op.Id
			w.mu.Unlock()
			return nil
		case err != nil, status == http.StatusServiceUnavailable, status == http.StatusTooManyRequests:
			cause := strconv.Itoa(status)
			if err != nil {
				cause = "connection"
				if errors.Is(err, context.DeadlineExceeded) || os.IsTimeout(err) {
					cause = "timeout"
				}
			}
			w.mu.Lock()
			w.retried[cause]++
			w.mu.Unlock()
			if time.Now().After(deadline) {
				return fmt.Errorf("not accepted within 30s; last: %d %v %s", status, err, b)
			}
			time.Sleep(20 * time.Millisecond)
		default:
			return fmt.Errorf("replica %s answered %d: %s", p.name, status, b)
		}
	}
}

func sendRaw(hc *http.Client, req *http.Request) (int, []byte, error) {
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// finished reports whether every writer is done.
func (w *writers) finished() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.done == e2eWriters
}

// wait waits for every writer and returns the accepted creates.
func (w *writers) wait() map[string]string {
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.accepted)
}

func (w *writers) retries() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.retried)
}
