package server_test

// End-to-end tests of crash and shutdown recovery: the real groupgate binary
// runs as a child process against a TechPass simulator in the test process,
// is killed (or stopped) with operations queued, and is started again on the
// same configuration and store file.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/groupgate/groupgate/api"
	"github.com/groupgate/groupgate/boltstore"
	"github.com/groupgate/groupgate/config"
	"github.com/groupgate/groupgate/internal/apitest"
	"github.com/groupgate/groupgate/internal/testkit"
	"github.com/groupgate/groupgate/queue"
	"github.com/groupgate/groupgate/techpass/techpasssim"
	"github.com/groupgate/groupgate/tenants"
)

const (
	// crashInterval is the upstream interval, at the simulator and in the
	// gateway's configuration.
	crashInterval = 150 * time.Millisecond
	// crashPaceGuard is the gateway's pace guard. It was raised from the
	// default when the simulator stamped a request's arrival when its
	// handler ran in this race-instrumented process, up to 95 ms late on
	// a loaded machine. It now stamps when the bytes reached its socket
	// (techpasssim.Simulator.Listener). The gate spaces requests from when
	// their headers were written into the connection's buffer, which can
	// precede the socket write by some milliseconds in a loaded process
	// (up to 5.8 ms measured in a replica process); the guard covers that
	// and the timings written around it.
	crashPaceGuard = 40 * time.Millisecond
	// crashCreates is how many groups each test asks for.
	crashCreates = 12
	// crashProject is the tenant/project every request is made as.
	crashProject = "SHIP/MOH"
)

// crashLatency makes every upstream request take 60-120 ms, so that an
// upstream call is in flight for most of each interval and a kill is likely
// to land on an operation marked running.
var crashLatency = techpasssim.Faults{LatencyMin: 60 * time.Millisecond, LatencyMax: 120 * time.Millisecond}

// TestCrashSIGKILLWithQueuedOperations proves that accepted operations
// survive a crash: the gateway process is SIGKILLed while operations are
// queued and, when the simulator shows it, one is running with its upstream
// request in flight. Started again at once on the same store, while that
// request may still be in flight upstream, the gateway finishes every
// operation as succeeded, the interrupted one replayed once (attempt 2) and
// never created twice: the simulator created each group exactly once, saw no
// duplicate create, no rate violation and never two requests at once, and
// the store file is intact after the kill.
func TestCrashSIGKILLWithQueuedOperations(t *testing.T) {
	rig := newCrashRig(t)
	p := rig.start()
	g := rig.client(p)
	ids := rig.createAll(g)

	inFlight := rig.waitForKillPoint(g, ids)
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatalf("SIGKILL: %v", err)
	}
	if exited, _ := p.waitExit(10 * time.Second); !exited {
		t.Fatal("the killed process did not exit within 10s")
	}

	ops := rig.storeOperations(ids)
	pending, running := countPending(ops)
	t.Logf("at the kill: %d of %d operations pending (%d running); upstream request in flight: %v", pending, len(ids), len(running), inFlight)
	if pending < 5 {
		t.Fatalf("only %d operations were pending at the kill; the test needs at least 5 to prove anything", pending)
	}
	if inFlight && len(running) != 1 {
		t.Errorf("an upstream request was in flight at the kill, yet %d operations are running in the store, want 1", len(running))
	}
	if len(running) > 1 {
		t.Errorf("%d operations running at once: %v", len(running), running)
	}

	// Restart at once: the killed process's last create may still be in
	// flight at the simulator, which finishes a create whose client hung up.
	// The new process must neither overlap it nor start within the interval.
	g = rig.client(rig.start())
	final := rig.awaitAll(g, ids)
	rig.checkOutcome(g)
	restarted := rig.procs[len(rig.procs)-1]
	rig.stopGracefully(restarted)
	// The replay either found the group (the interrupted create had reached
	// TechPass) or created it; either way exactly once. Say which path ran.
	adopted := func(id string) bool {
		for line := range strings.Lines(restarted.stderr.String()) {
			if strings.Contains(line, "group already exists upstream; adopting it") && strings.Contains(line, id) {
				return true
			}
		}
		return false
	}
	for _, id := range ids {
		want := int32(1)
		if slices.Contains(running, id) && !adopted(id) {
			// Interrupted, then replayed once; a replay that adopts the
			// group sends only the adoption check, not counted as an attempt.
			want = 2
		}
		if got := final[id].Attempts; got != want {
			t.Errorf("operation %s (%s): %d attempts, want %d (adopted by the replay: %v)", id, final[id].Group, got, want, adopted(id))
		}
	}
	t.Logf("the replay adopted a group the killed process had created: %v",
		strings.Contains(restarted.stderr.String(), "group already exists upstream; adopting it"))
}

// TestGracefulSIGTERMWithQueuedOperations proves that SIGTERM is a clean
// stop: with operations queued and an upstream request in flight, the
// process lets that request finish, commits it, and exits 0 within a few
// seconds, leaving nothing running in the store. Started again at once, it
// finishes the rest; every operation succeeds on its first attempt, no group
// is created twice and the upstream interval holds across the restart.
func TestGracefulSIGTERMWithQueuedOperations(t *testing.T) {
	rig := newCrashRig(t)
	p := rig.start()
	g := rig.client(p)
	ids := rig.createAll(g)

	inFlight := rig.waitForKillPoint(g, ids)
	rig.stopGracefully(p)
	if st := rig.up.stats("SHIP"); st.InFlight != 0 {
		t.Errorf("the process exited with %d upstream requests in flight", st.InFlight)
	}

	ops := rig.storeOperations(ids)
	pending, running := countPending(ops)
	t.Logf("at the stop: %d of %d operations pending; upstream request in flight at SIGTERM: %v", pending, len(ids), inFlight)
	if len(running) != 0 {
		t.Errorf("operations left running after a graceful stop: %v", running)
	}
	if pending < 4 {
		t.Fatalf("only %d operations were pending after the stop; the test needs some queued to prove anything", pending)
	}

	g = rig.client(rig.start())
	final := rig.awaitAll(g, ids)
	for _, id := range ids {
		if got := final[id].Attempts; got != 1 {
			t.Errorf("operation %s (%s): %d attempts, want 1 (nothing needs replaying after a graceful stop)", id, final[id].Group, got)
		}
	}
	rig.checkOutcome(g)
	rig.stopGracefully(rig.procs[len(rig.procs)-1])
}

// crashRig is one test's simulator, binary, configuration and store,
// shared by every gateway process the test starts.
type crashRig struct {
	t      *testing.T
	up     *upstream
	bin    string
	config string
	store  string
	base   string // the API's base URL, the same for every process
	key    string // the API key of SHIP/MOH
	names  []string
	procs  []*gatewayProcess
}

// newCrashRig builds the binary, starts the simulator with latency and
// writes a configuration for tenant SHIP, project MOH on a free port.
func newCrashRig(t *testing.T) *crashRig {
	t.Helper()
	dir := t.TempDir()
	rig := &crashRig{
		t:      t,
		bin:    buildGroupgate(t, dir),
		config: filepath.Join(dir, "groupgate.yaml"),
		store:  filepath.Join(dir, "data", "groupgate.db"),
		up:     startUpstream(t, crashInterval, 0, "SHIP"),
	}
	if err := rig.up.sim.SetFaults(crashLatency); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	rig.base = "http://" + addr
	key, stored := tenants.NewKey()
	rig.key = key
	cfg := fmt.Sprintf(`listen: %q
store_path: %q
interval: %s
pace_guard: %s
%s`, addr, rig.store, crashInterval, crashPaceGuard, processYAML(rig.up.tps["SHIP"], stored))
	testkit.WriteFile(t, rig.config, cfg)
	for i := range crashCreates {
		rig.names = append(rig.names, fmt.Sprintf("crash-%02d", i))
	}
	return rig
}

// buildGroupgate builds cmd/groupgate into dir and returns the binary's
// path. It skips the test if the go command is not on PATH.
func buildGroupgate(t *testing.T, dir string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH; cannot build the binary")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found at %s: %v", root, err)
	}
	bin := filepath.Join(dir, "groupgate")
	cmd := exec.Command(goBin, "build", "-o", bin, "./cmd/groupgate")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/groupgate: %v\n%s", err, out)
	}
	return bin
}

// freeAddr returns a loopback address with a port that was free a moment
// ago. Every process of a test listens on it, so the client's base URL
// stays the same across restarts.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// gatewayProcess is a groupgate binary running as a child process.
type gatewayProcess struct {
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	done           chan struct{} // closed when the process has exited
	err            error         // cmd.Wait's result, set before done closes
}

// start runs the binary on the rig's configuration and waits until it
// answers /healthz. The process is killed at the end of the test if still
// running, and its output is logged if the test failed.
func (r *crashRig) start() *gatewayProcess {
	r.t.Helper()
	n := len(r.procs) + 1
	cmd := exec.Command(r.bin, "-config", r.config)
	cmd.Dir = filepath.Dir(r.config)
	// The child must read its configuration from the file alone.
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "GROUPGATE_") })
	p := &gatewayProcess{cmd: cmd, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("start groupgate: %v", err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	r.procs = append(r.procs, p)
	r.t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
		if r.t.Failed() {
			r.t.Logf("process %d (%v)\nstdout:\n%s\nstderr:\n%s", n, p.err, p.stdout, p.stderr)
		}
	})

	hc := apitest.NewClient(r.t, &http.Transport{DisableKeepAlives: true})
	hc.Timeout = time.Second
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-p.done:
			r.t.Fatalf("process %d exited before serving: %v\nstderr:\n%s", n, p.err, p.stderr)
		default:
		}
		if resp, err := hc.Get(r.base + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("process %d did not answer /healthz within 15s", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitExit waits up to within for the process to exit. It reports whether
// it exited and, if so, cmd.Wait's result.
func (p *gatewayProcess) waitExit(within time.Duration) (exited bool, err error) {
	t := time.NewTimer(within)
	defer t.Stop()
	select {
	case <-p.done:
		return true, p.err
	case <-t.C:
		return false, nil
	}
}

// stopGracefully sends SIGTERM and requires the process to exit 0 within
// 5 s, then checks the store file's integrity.
func (r *crashRig) stopGracefully(p *gatewayProcess) {
	r.t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		r.t.Fatalf("SIGTERM: %v", err)
	}
	exited, err := p.waitExit(5 * time.Second)
	if !exited {
		r.t.Fatal("the process did not exit within 5s of SIGTERM")
	}
	if err != nil {
		r.t.Fatalf("the process exited with %v after SIGTERM, want exit status 0", err)
	}
	r.t.Logf("SIGTERM: exited 0 after %v", time.Since(start).Round(time.Millisecond))
	r.storeOperations(nil) // integrity check only
}

// client returns a client for the API of p (which must be the running
// process), validating every response against openapi.yaml. Each process
// gets its own connections.
func (r *crashRig) client(p *gatewayProcess) *gateway {
	r.t.Helper()
	tr := &http.Transport{}
	r.t.Cleanup(tr.CloseIdleConnections)
	return &gateway{
		t: r.t, up: r.up, base: r.base, keys: map[string]string{crashProject: r.key},
		http: apitest.NewClient(r.t, tr), bodies: &syncBuffer{},
	}
}

// createAll queues a create for every name and returns the operation ids in
// order; each create must be answered 202.
func (r *crashRig) createAll(g *gateway) []string {
	r.t.Helper()
	var ids []string
	for _, name := range r.names {
		ids = append(ids, g.create(crashProject, name).Id)
	}
	return ids
}

// states reads every operation through the API and returns them by id. A
// failed operation stops the test.
func (r *crashRig) states(g *gateway, ids []string) map[string]api.Operation {
	r.t.Helper()
	ops := make(map[string]api.Operation, len(ids))
	for _, id := range ids {
		resp := g.do("GET", "/v1/operations/"+id, crashProject, nil)
		if resp.status != http.StatusOK {
			r.t.Fatalf("get operation %s: %d %s", id, resp.status, resp.body)
		}
		var op api.Operation
		resp.decode(r.t, &op)
		if op.State == api.Failed {
			r.t.Fatalf("operation %s failed: %+v", id, op.Error)
		}
		ops[id] = op
	}
	return ops
}

// waitForKillPoint polls until at least 2 operations have succeeded while
// at least 5 are still pending, then waits (for at most two intervals) for an
// upstream request to be in flight at the simulator, so that the caller's
// kill or stop most likely lands on a running operation. It reports whether
// a request was in flight when it returned.
func (r *crashRig) waitForKillPoint(g *gateway, ids []string) bool {
	r.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		succeeded := 0
		for _, op := range r.states(g, ids) {
			if op.State == api.Succeeded {
				succeeded++
			}
		}
		if pending := len(ids) - succeeded; pending < 5 {
			r.t.Fatalf("%d operations already succeeded before the kill point; the queue drains too fast for this test", succeeded)
		}
		if succeeded >= 2 {
			break
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("only %d operations succeeded within 20s", succeeded)
		}
		time.Sleep(20 * time.Millisecond) // light load on the simulator's process
	}
	// The simulator is in this process: reading its in-flight count is cheap.
	deadline = time.Now().Add(2 * (crashInterval + crashPaceGuard))
	for {
		if r.up.stats("SHIP").InFlight > 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
}

// awaitAll polls every operation until it is final, requires it to have
// succeeded, and returns the final operations by id.
func (r *crashRig) awaitAll(g *gateway, ids []string) map[string]api.Operation {
	r.t.Helper()
	final := make(map[string]api.Operation, len(ids))
	for i, id := range ids {
		op := g.await(crashProject, id, 20*time.Second)
		if op.State != api.Succeeded {
			r.t.Fatalf("operation %s (%s): %s %+v", id, r.names[i], op.State, op.Error)
		}
		if want := "SHIP:MOH:" + r.names[i]; op.FullName != want {
			r.t.Errorf("operation %s is for %s, want %s", id, op.FullName, want)
		}
		final[id] = op
	}
	return final
}

// checkOutcome requires the gateway to list every group active with its
// full name and upstream id, and the simulator to hold exactly those groups,
// each created once, with no duplicate create, no violation and never two
// requests in flight.
func (r *crashRig) checkOutcome(g *gateway) {
	r.t.Helper()
	var listed []string
	for _, gr := range g.list(crashProject) {
		if gr.State != api.GroupStateActive || gr.UpstreamId == nil || *gr.UpstreamId == "" {
			r.t.Errorf("group %s: state %s, upstream id %v; want active with an upstream id", gr.FullName, gr.State, gr.UpstreamId)
		}
		listed = append(listed, gr.FullName)
	}
	var want []string
	for _, n := range r.names {
		want = append(want, "SHIP:MOH:"+n)
	}
	slices.Sort(listed)
	if !slices.Equal(listed, want) {
		r.t.Errorf("gateway lists %v, want %v", listed, want)
	}

	var upstream []string
	for _, ug := range r.up.sim.Groups("SHIP") {
		upstream = append(upstream, ug.Name)
	}
	slices.Sort(upstream)
	if !slices.Equal(upstream, want) {
		r.t.Errorf("simulator holds %v, want exactly %v", upstream, want)
	}

	st := r.up.stats("SHIP")
	for _, name := range want {
		if n := st.CreatesByName[name]; n != 1 {
			r.t.Errorf("simulator created %s %d times, want 1", name, n)
		}
	}
	for name, n := range st.CreatesByName {
		if n > 1 {
			r.t.Errorf("simulator created %s %d times", name, n)
		}
	}
	if st.DuplicateCreates != 0 {
		r.t.Errorf("simulator refused %d creates as duplicates, want 0 (a replay must look before it creates)", st.DuplicateCreates)
	}
	if st.Violations != 0 || st.MaxInFlight != 1 {
		r.t.Errorf("simulator saw %d violations and at most %d requests in flight, want 0 and 1", st.Violations, st.MaxInFlight)
	}
	if gap, ok := st.MinGap(); ok && gap < crashInterval {
		r.t.Errorf("minimum gap between upstream requests %v, want >= %v", gap, crashInterval)
	}
	r.t.Logf("simulator: %d requests, %d token requests, %d groups", st.Requests, st.TokenRequests, len(upstream))
}

// storeOperations opens the store file of a stopped gateway, checks its
// integrity and returns the operations with the given ids.
func (r *crashRig) storeOperations(ids []string) map[string]queue.Operation {
	r.t.Helper()
	st, err := boltstore.Open(r.store, time.Second)
	if err != nil {
		r.t.Fatalf("open the store after the process exited: %v", err)
	}
	defer st.Close()
	if err := st.Check(); err != nil {
		r.t.Fatalf("store integrity: %v", err)
	}
	ops := make(map[string]queue.Operation, len(ids))
	for _, id := range ids {
		op, err := st.Operation(context.Background(), id)
		if errors.Is(err, queue.ErrNotFound) {
			r.t.Fatalf("accepted operation %s is not in the store", id)
		}
		if err != nil {
			r.t.Fatal(err)
		}
		if op.State == queue.Failed {
			r.t.Fatalf("operation %s failed: %+v", id, op.Failure)
		}
		ops[id] = op
	}
	return ops
}

// countPending returns how many operations are queued or running, and the
// ids of those running.
func countPending(ops map[string]queue.Operation) (pending int, running []string) {
	for id, op := range ops {
		if !op.State.Final() {
			pending++
		}
		if op.State == queue.Running {
			running = append(running, id)
		}
	}
	return pending, running
}

// processYAML is the end of a gateway process's configuration that the
// process tests share: generous rate limits, plain HTTP, debug logs as JSON,
// and tenant SHIP on the simulator's credentials tp with project MOH and
// its one key, stored.
func processYAML(tp config.TechPassConfig, stored tenants.Key) string {
	return fmt.Sprintf(`rate_limit: {per_second: 10000, burst: 10000}
allow_http: true
log_level: debug
log_format: json
tenants:
  - name: SHIP
    techpass:
      api_url: %q
      token_url: %q
      client_id: %q
      client_secret_file: %q
      api_key_file: %q
    projects:
      - name: MOH
        keys:
          - id: %q
            hash: %q
`, tp.APIURL, tp.TokenURL, tp.ClientID, tp.ClientSecretFile, tp.APIKeyFile, stored.ID, tenants.HashString(stored.Hash))
}
