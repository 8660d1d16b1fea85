package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/groupgate/groupgate/dispatch"
	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/internal/pgtest"
	"github.com/groupgate/groupgate/internal/testkit"
	"github.com/groupgate/groupgate/pacing"
	"github.com/groupgate/groupgate/pgstore"
	"github.com/groupgate/groupgate/queue"
	"github.com/groupgate/groupgate/techpass"
	"github.com/groupgate/groupgate/techpass/techpasssim"
)

// fleet is several replicas of the dispatchers, each with its own pool on
// one database (the queue and mirror, leases, heartbeats and pacing
// record), in front of one simulator.
type fleet struct {
	t        *testing.T
	dsn      string
	sim      *techpasssim.Simulator
	simURL   string
	mirror   *pgstore.Store // a pool of the test's own, for enqueues and checks
	service  *groups.Service
	tenants  []string
	interval time.Duration
	cfg      pgstore.LeadingConfig

	mu       sync.Mutex
	replicas map[string]*replica
	two      map[string][]string
}

type replica struct {
	name    string
	store   *pgstore.Store
	leading *pgstore.Leading
	ds      *dispatch.Dispatchers[groups.Effect]
	cancel  context.CancelFunc
	done    chan struct{}
}

const (
	fleetSecret = "a-client-secret-for-tests"
	fleetAPIKey = "a-namespace-api-key"
)

func directoryID(i int) string { return fmt.Sprintf("7e1d3a52-0b4c-4f1e-9d7a-5c2b8e6f1a%02d", i) }

func newFleet(t *testing.T, interval time.Duration, cfg pgstore.LeadingConfig, tenants ...string) *fleet {
	f := &fleet{t: t, dsn: pgtest.DSN(t), tenants: tenants, interval: interval, cfg: cfg, replicas: map[string]*replica{}}
	f.mirror = mustOpenDSN(t, f.dsn)
	f.sim = techpasssim.New(techpasssim.Config{Interval: interval})
	for i, tn := range tenants {
		err := f.sim.AddNamespace(techpasssim.Namespace{Name: tn, DirectoryID: directoryID(i),
			ClientID: fmt.Sprintf("1f0c2d3e-4a5b-4c6d-8e7f-901a2b3c4d%02d", i), ClientSecret: fleetSecret, APIKeys: []string{fleetAPIKey + tn}})
		if err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(f.sim.Handler())
	t.Cleanup(srv.Close)
	f.simURL = srv.URL
	f.service = groups.NewService(groups.ServiceConfig{Store: f.mirror, Queue: fleetScheduler{f}, Quotas: noQuotas{}})
	t.Cleanup(f.stopAll)
	return f
}

// fleetScheduler wakes the tenant's dispatcher on every replica (in
// production, a NOTIFY does).
type fleetScheduler struct{ f *fleet }

func (s fleetScheduler) Wake(tenant string) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	for _, r := range s.f.replicas {
		r.ds.Wake(tenant)
	}
}
func (fleetScheduler) Notify(string)                   {}
func (fleetScheduler) Limits(string) queue.Limits      { return queue.Limits{} }
func (s fleetScheduler) Interval(string) time.Duration { return s.f.interval }

type noQuotas struct{}

func (noQuotas) GroupLimits(context.Context, string, string) (int, int, error) { return 0, 0, nil }

// start starts replica name: its pool, heartbeat, listener and
// dispatchers (one per tenant, each with its gate and TechPass client).
func (f *fleet) start(name string) *replica {
	t := f.t
	st, err := pgstore.Open(t.Context(), pgstore.Config{DSN: f.dsn, MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	cfg := f.cfg
	cfg.Replica = name
	leading, err := st.NewLeading(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := st.NewListener(pgstore.ListenerConfig{Channels: []string{pgstore.ChannelLeases}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leading.Listen(ln); err != nil {
		t.Fatal(err)
	}
	ds := dispatch.NewDispatchers[groups.Effect](groups.NewLedger(st), nil, nil)
	ds.UseLeases(leading)
	for i, tn := range f.tenants {
		gate := pacing.NewGate(f.interval+5*time.Millisecond, nil)
		client, err := techpass.New(techpass.Config{
			Namespace: tn, APIURL: f.simURL, TokenURL: techpasssim.TokenURL(f.simURL, directoryID(i)),
			ClientID:     fmt.Sprintf("1f0c2d3e-4a5b-4c6d-8e7f-901a2b3c4d%02d", i),
			ClientSecret: func() (string, error) { return fleetSecret, nil },
			APIKey:       func() (string, error) { return fleetAPIKey + tn, nil },
			Pacer:        gate,
		})
		if err != nil {
			t.Fatal(err)
		}
		ds.Put(dispatch.Config[groups.Effect]{Tenant: tn, Handler: groups.NewExecutor(client, st, nil, nil), Gate: gate,
			// A crash cuts the call in flight off.
			Grace: time.Millisecond,
			Retry: dispatch.RetryPolicy{BaseDelay: 10 * time.Millisecond, MaxDelay: 50 * time.Millisecond}})
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{name: name, store: st, leading: leading, ds: ds, cancel: cancel, done: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); _ = ln.Run(ctx) }()
	go func() { defer wg.Done(); _ = leading.Run(ctx) }()
	go func() { defer wg.Done(); _ = ds.Run(ctx) }()
	go func() { wg.Wait(); close(r.done) }()
	f.mu.Lock()
	f.replicas[name] = r
	f.mu.Unlock()
	return r
}

// crash stops r as a crash would: its pool closed first (no release, no
// departure: its leases and heartbeat lapse), then everything it runs.
func (f *fleet) crash(r *replica) {
	r.store.Close()
	r.cancel()
	<-r.done
	f.mu.Lock()
	delete(f.replicas, r.name)
	f.mu.Unlock()
}

// shutdown stops r as a replica shutting down does: it departs, then its
// dispatchers release their leases.
func (f *fleet) shutdown(r *replica) {
	if err := r.leading.Depart(f.t.Context()); err != nil {
		f.t.Error(err)
	}
	r.cancel()
	<-r.done
	f.mu.Lock()
	delete(f.replicas, r.name)
	f.mu.Unlock()
}

func (f *fleet) stopAll() {
	f.mu.Lock()
	rs := make([]*replica, 0, len(f.replicas))
	for _, r := range f.replicas {
		rs = append(rs, r)
	}
	f.mu.Unlock()
	for _, r := range rs {
		r.cancel()
		<-r.done
	}
}

// leaders returns, for each tenant, the replicas that lead it now.
func (f *fleet) leaders() map[string][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string][]string{}
	for _, r := range f.replicas {
		for _, tn := range r.ds.Leading() {
			out[tn] = append(out[tn], r.name)
		}
	}
	return out
}

// watchLeaders samples the leaders every few milliseconds until the test
// ends, remembering any tenant seen led by two replicas (see twoLeaders).
func (f *fleet) watchLeaders() {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(3 * time.Millisecond):
			}
			for tn, rs := range f.leaders() {
				if len(rs) > 1 {
					f.mu.Lock()
					if f.two == nil {
						f.two = map[string][]string{}
					}
					f.two[tn] = rs
					f.mu.Unlock()
				}
			}
		}
	}()
	f.t.Cleanup(func() { close(stop); <-done })
}

// twoLeaders returns the tenants watchLeaders saw led twice at once.
func (f *fleet) twoLeaders() map[string][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.two
}

// settled waits until every tenant's queue is empty.
func (f *fleet) settled(within time.Duration) {
	f.t.Helper()
	testkit.Eventually(f.t, within, "every queue empties", func() bool {
		for _, tn := range f.tenants {
			d, err := f.mirror.Depth(f.t.Context(), tn)
			if err != nil || d.Total > 0 {
				return false
			}
		}
		return true
	})
}

func (f *fleet) create(tenant string, n int) []string {
	v := f.service.Validator()
	var ids []string
	for i := range n {
		name, err := groups.NewName(v, tenant, "MOH", fmt.Sprintf("g%03d", i))
		if err != nil {
			f.t.Fatal(err)
		}
		op, _, err := f.service.Create(f.t.Context(), groups.Request{Actor: "test"}, name, "")
		if err != nil {
			f.t.Fatal(err)
		}
		ids = append(ids, op.ID)
	}
	return ids
}

// checkUpstream asserts what the simulator saw of each tenant: no pacing
// violation, never two requests in flight, no gap under the interval,
// every group created once.
func (f *fleet) checkUpstream() {
	f.t.Helper()
	stats := f.sim.Stats()
	for _, tn := range f.tenants {
		st := stats.Namespaces[tn]
		if st.Violations != 0 || st.MaxInFlight > 1 {
			f.t.Errorf("%s: %d violations, %d in flight at most", tn, st.Violations, st.MaxInFlight)
		}
		if gap, ok := st.MinGap(); ok && gap < f.interval {
			f.t.Errorf("%s: a gap of %v between two requests, under the interval %v", tn, gap, f.interval)
		}
		for name, n := range st.CreatesByName {
			if n != 1 {
				f.t.Errorf("%s: group %s created %d times", tn, name, n)
			}
		}
	}
}

// TestReplicasLeadEachTenantOnce: three replicas on one database lead
// every tenant exactly once, spread as Assign says; when the leader of some
// tenants crashes (no release), another takes each of them over within the
// lease's time to live plus two intervals, and the simulator sees the
// tenant's budget kept throughout: no violation, one request in flight,
// every group created once, every operation succeeded.
func TestReplicasLeadEachTenantOnce(t *testing.T) {
	const interval = 150 * time.Millisecond
	const ttl = 1500 * time.Millisecond
	tenants := []string{"SHIP", "DOCK", "PORT", "PIER", "QUAY"}
	names := []string{"replica-1", "replica-2", "replica-3"}
	assigned := pgstore.Assign(tenants, names)
	spread := map[string]bool{}
	for _, r := range assigned {
		spread[r] = true
	}
	if len(spread) < 2 {
		t.Fatalf("the test's tenants all hash to one replica: %v", assigned)
	}
	f := newFleet(t, interval, pgstore.LeadingConfig{TTL: ttl, Grace: 100 * time.Millisecond, Poll: 50 * time.Millisecond}, tenants...)
	rs := map[string]*replica{}
	for _, n := range names {
		rs[n] = f.start(n)
	}
	f.watchLeaders()
	f.awaitAssignees(tenants, assigned)

	var ids []string
	for _, tn := range tenants {
		ids = append(ids, f.create(tn, 12)...)
	}
	// Let the work begin, then crash the leader of SHIP.
	victim := rs[assigned["SHIP"]]
	var lost []string
	for tn, r := range assigned {
		if r == victim.name {
			lost = append(lost, tn)
		}
	}
	testkit.Eventually(t, 10*time.Second, "SHIP's work begins", func() bool { return f.sim.Stats().Namespaces["SHIP"].Requests >= 3 })
	crashed := time.Now()
	f.crash(victim)
	time.Sleep(20 * time.Millisecond) // a request cut off may still arrive
	before := map[string]int{}
	for _, tn := range lost {
		before[tn] = f.sim.Stats().Namespaces[tn].Requests
	}
	bound := ttl + 2*interval
	for _, tn := range lost {
		var next time.Duration
		came := testkit.Poll(3*bound, 2*time.Millisecond, func() bool {
			if f.sim.Stats().Namespaces[tn].Requests > before[tn] {
				next = time.Since(crashed)
				return true
			}
			return false
		})
		if !came {
			t.Fatalf("%s: no upstream request within %v of its leader's crash", tn, 3*bound)
		}
		t.Logf("%s: the next upstream request came %v after its leader crashed (bound %v)", tn, next.Round(time.Millisecond), bound)
		if next > bound {
			t.Errorf("%s: the next upstream request came %v after the crash, later than the TTL + 2 intervals (%v)", tn, next, bound)
		}
	}
	testkit.Eventually(t, 10*time.Second, "each tenant led once after the crash", func() bool {
		l := f.leaders()
		for _, tn := range tenants {
			if len(l[tn]) != 1 {
				return false
			}
		}
		return true
	})
	f.settled(30 * time.Second)
	if two := f.twoLeaders(); len(two) > 0 {
		t.Errorf("tenants seen with two leaders at once: %v", two)
	}
	f.checkUpstream()
	for _, id := range ids {
		op, err := f.mirror.Operation(t.Context(), id)
		if err != nil || op.State != queue.Succeeded {
			t.Errorf("operation %s: %v, %v (%+v)", id, op.State, err, op.Failure)
		}
	}
}

// TestReplicaShutdownHandsOverAtOnce: a replica that shuts down (departs,
// then releases) hands its tenants over at once, long before its leases
// could have lapsed, and the tenants' work goes on under the budget.
func TestReplicaShutdownHandsOverAtOnce(t *testing.T) {
	const interval = 100 * time.Millisecond
	const ttl = 10 * time.Second // a lapse would take this long
	tenants := []string{"SHIP", "DOCK", "PORT"}
	// A poll slower than the lapse would be: only the NOTIFY is quick.
	f := newFleet(t, interval, pgstore.LeadingConfig{TTL: ttl, Grace: 5 * time.Second, Poll: 5 * time.Second}, tenants...)
	a := f.start("replica-a")
	testkit.Eventually(t, 10*time.Second, "the only replica leads every tenant", func() bool { return len(a.ds.Leading()) == len(tenants) })
	b := f.start("replica-b")
	ids := f.create("SHIP", 6)
	ids = append(ids, f.create("DOCK", 6)...)
	time.Sleep(2 * interval)
	stopped := time.Now()
	f.shutdown(a)
	testkit.Eventually(t, 5*time.Second, "the other replica leads every tenant", func() bool { return len(b.ds.Leading()) == len(tenants) })
	took := time.Since(stopped)
	t.Logf("handed over %d tenants in %v", len(tenants), took.Round(time.Millisecond))
	if took > time.Second {
		t.Errorf("the handover took %v, want well under the TTL (%v) and the poll (%v)", took, ttl, f.cfg.Poll)
	}
	f.settled(20 * time.Second)
	f.checkUpstream()
	for _, id := range ids {
		if op, err := f.mirror.Operation(t.Context(), id); err != nil || op.State != queue.Succeeded {
			t.Errorf("operation %s: %v, %v", id, op.State, err)
		}
	}
}

// TestLeadFencesItsPacingRecord: a lead's pacing record refuses to record a
// start once the lead is released and taken by another replica (so the
// gate refuses the request), and the new leader's gate waits for the
// request the old leader started, by the database's clock.
func TestLeadFencesItsPacingRecord(t *testing.T) {
	dsn := pgtest.DSN(t)
	sa, sb := mustOpenDSN(t, dsn), mustOpenDSN(t, dsn)
	cfg := pgstore.LeadingConfig{TTL: 5 * time.Second, Grace: 10 * time.Millisecond, Poll: 20 * time.Millisecond}
	cfg.Replica = "replica-a"
	la, err := sa.NewLeading(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Replica = "replica-b"
	lb, err := sb.NewLeading(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	leadA, err := la.Lead(ctx, "SHIP")
	if err != nil {
		t.Fatal(err)
	}
	const interval = 300 * time.Millisecond
	gateA := pacing.NewGate(interval, nil)
	recA := leadA.(dispatch.RecordedLead).PacingRecord()
	if err := gateA.Attach(ctx, recA); err != nil {
		t.Fatal(err)
	}
	release, err := gateA.Acquire(ctx) // a request started, never ended
	if err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	_ = release // the old leader "crashed" in flight: no end is recorded
	if err := leadA.Release(ctx); err != nil {
		t.Fatal(err)
	}
	leadB, err := lb.Lead(ctx, "SHIP")
	if err != nil {
		t.Fatal(err)
	}
	if leadB.Epoch() <= leadA.Epoch() {
		t.Errorf("epochs %d then %d: the new lead's must be greater", leadA.Epoch(), leadB.Epoch())
	}
	if err := recA.Start(ctx, 0); !errors.Is(err, queue.ErrFenced) {
		t.Errorf("the released lead's start: %v, want ErrFenced", err)
	}
	gateA2 := pacing.NewGate(interval, nil)
	gateA2.Attach(ctx, recA) // reads only: allowed
	if _, err := gateA2.Acquire(ctx); !errors.Is(err, queue.ErrFenced) {
		t.Errorf("a request through the deposed lead's gate: %v, want ErrFenced", err)
	}
	gateB := pacing.NewGate(interval, func() time.Time { return time.Now() })
	if err := gateB.Attach(ctx, leadB.(dispatch.RecordedLead).PacingRecord()); err != nil {
		t.Fatal(err)
	}
	rel, err := gateB.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rel()
	// No end recorded: a further interval.
	if gap := time.Since(started); gap < 2*interval {
		t.Errorf("the new leader started %v after the old leader's unended request, want at least %v", gap, 2*interval)
	}
	_ = leadB.Release(ctx)
}

// TestJoiningReplicaTakesItsTenants: a replica that joins is handed the
// tenants assigned to it (the leader gives them up, the newcomer takes
// them), and each tenant keeps one leader.
func TestJoiningReplicaTakesItsTenants(t *testing.T) {
	tenants := []string{"SHIP", "DOCK", "PORT", "PIER", "QUAY"}
	names := []string{"replica-a", "replica-b"}
	assigned := pgstore.Assign(tenants, names)
	// A grace long enough that the newcomer, woken by the release, takes a
	// tenant handed over before the one that gave it up could retake it,
	// even on a loaded machine.
	f := newFleet(t, 100*time.Millisecond, pgstore.LeadingConfig{TTL: 3 * time.Second, Grace: 2 * time.Second, Poll: 50 * time.Millisecond}, tenants...)
	a := f.start(names[0])
	testkit.Eventually(t, 10*time.Second, "the only replica leads every tenant", func() bool { return len(a.ds.Leading()) == len(tenants) })
	f.start(names[1])
	f.awaitAssignees(tenants, assigned)
	// Each moved tenant was led twice (by a, then by b), the others once.
	moved := 0
	for _, r := range assigned {
		if r == names[1] {
			moved++
		}
	}
	if moved == 0 {
		t.Fatalf("no tenant is assigned to the newcomer: %v", assigned)
	}
	f.mu.Lock()
	total := f.replicas[names[0]].ds.Handovers() + f.replicas[names[1]].ds.Handovers()
	f.mu.Unlock()
	if total != uint64(len(tenants)+moved) {
		t.Errorf("%d leads taken, want %d (every tenant once, the %d moved ones again)", total, len(tenants)+moved, moved)
	}
}

// awaitAssignees waits until each of tenants is led by one replica, the one
// assigned names.
func (f *fleet) awaitAssignees(tenants []string, assigned map[string]string) {
	f.t.Helper()
	testkit.Eventually(f.t, 10*time.Second, "each tenant led once, by its assignee", func() bool {
		l := f.leaders()
		for _, tn := range tenants {
			if len(l[tn]) != 1 || l[tn][0] != assigned[tn] {
				return false
			}
		}
		return true
	})
}
