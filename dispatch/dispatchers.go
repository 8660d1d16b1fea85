package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/groupgate/groupgate/queue"
)

// Dispatchers owns the dispatchers of every tenant and answers questions
// about their queues (limits, pace, estimates). Create with
// NewDispatchers, add tenants, then Run. Safe for concurrent use once running.
type Dispatchers[E any] struct {
	store       queue.Store[E]
	mu          sync.Mutex
	dispatchers map[string]*Dispatcher[E]
	// runs holds the stop function and done channel of each running
	// dispatcher, once Run has started.
	runs    map[string]dispatcherRun
	runCtx  context.Context
	wg      sync.WaitGroup
	now     func() time.Time
	logger  *slog.Logger
	settled Settled
	// leases decide which tenants this replica dispatches; LocalLeases
	// unless UseLeases was called.
	leases Leases
	// leading holds the tenants led now; handovers counts leads taken.
	leading   map[string]bool
	handovers uint64
}

type dispatcherRun struct {
	stop context.CancelFunc
	done chan struct{}
}

// NewDispatchers returns a registry of dispatchers over store.
func NewDispatchers[E any](store queue.Store[E], now func() time.Time, logger *slog.Logger) *Dispatchers[E] {
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Dispatchers[E]{store: store, dispatchers: map[string]*Dispatcher[E]{}, runs: map[string]dispatcherRun{}, now: now, logger: logger,
		leases: LocalLeases{}, leading: map[string]bool{}}
}

// UseLeases makes each tenant's dispatcher run only while this replica
// leads the tenant by leases (see Leases, Dispatcher.RunLed), for several
// replicas sharing one store. Call it before Run. Without it every
// dispatcher runs at once (LocalLeases: one process).
func (ds *Dispatchers[E]) UseLeases(l Leases) {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	ds.leases = l
}

var _ Leadership = (*Dispatchers[int])(nil)

// Leading implements Leadership: the tenants whose dispatcher runs here
// now, under a lead.
func (ds *Dispatchers[E]) Leading() []string {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	out := make([]string, 0, len(ds.leading))
	for t := range ds.leading {
		out = append(out, t)
	}
	return out
}

// Handovers implements Leadership: the leads taken since the registry
// was made.
func (ds *Dispatchers[E]) Handovers() uint64 {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	return ds.handovers
}

// releaseTimeout bounds the release of a lead.
const releaseTimeout = 5 * time.Second

// lead runs d each time this replica leads tenant, until ctx ends: it
// waits for the lead, runs d under it until the lead is lost (or ctx
// ends), releases it, and waits again.
func (ds *Dispatchers[E]) lead(ctx context.Context, tenant string, d *Dispatcher[E]) {
	ds.mu.Lock()
	leases := ds.leases
	ds.mu.Unlock()
	backoff := RetryPolicy{BaseDelay: 100 * time.Millisecond, MaxDelay: 5 * time.Second}
	failures := 0
	for ctx.Err() == nil {
		d.waiting.Store(true)
		lead, err := leases.Lead(ctx, tenant)
		if err != nil {
			d.waiting.Store(false)
			if ctx.Err() != nil {
				return
			}
			failures++
			wait := backoff.Backoff(failures)
			d.cfg.Logger.Error("lead the tenant", "err", err, "retry_in", wait)
			d.waiting.Store(true)
			d.sleep(ctx, wait)
			continue
		}
		failures = 0
		ds.mu.Lock()
		ds.leading[tenant] = true
		ds.handovers++
		ds.mu.Unlock()
		if lead.Epoch() != 0 {
			d.cfg.Logger.Info("leading the tenant", "epoch", lead.Epoch())
		}
		d.running.Store(true) // before waiting is cleared: Running stays true
		d.waiting.Store(false)
		err = d.RunLed(ctx, lead)
		ds.mu.Lock()
		delete(ds.leading, tenant)
		ds.mu.Unlock()
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
		if rerr := lead.Release(rctx); rerr != nil {
			d.cfg.Logger.Warn("release the lead", "err", rerr)
		}
		cancel()
		if err != nil && !errors.Is(err, queue.ErrFenced) && ctx.Err() == nil {
			d.cfg.Logger.Error("dispatcher stopped", "err", err)
			d.sleep(ctx, backoff.Backoff(1))
		}
	}
}

// Put adds or replaces the dispatcher of cfg.Tenant, filling Store, Now
// and Logger from the registry when unset. Called before Run it is started
// by Run; once Run has begun, a dispatcher being replaced is stopped first
// (its call in flight may finish within its grace) and the new one started.
func (ds *Dispatchers[E]) Put(cfg Config[E]) {
	if cfg.Store == nil {
		cfg.Store = ds.store
	}
	if cfg.Now == nil {
		cfg.Now = ds.now
	}
	if cfg.Logger == nil {
		cfg.Logger = ds.logger
	}
	onSettled := cfg.OnSettled
	cfg.OnSettled = func(op queue.Operation) {
		if onSettled != nil {
			onSettled(op)
		}
		ds.settled.Notify(op.ID)
	}
	d := NewDispatcher(cfg)
	ds.stopRun(cfg.Tenant)
	ds.mu.Lock()
	defer ds.mu.Unlock()
	ds.dispatchers[cfg.Tenant] = d
	if ds.runCtx != nil {
		ds.startLocked(cfg.Tenant, d)
	}
}

// Remove stops and forgets tenant's dispatcher: its queue is kept in the
// store and resumes when a dispatcher is put back.
func (ds *Dispatchers[E]) Remove(tenant string) {
	ds.stopRun(tenant)
	ds.mu.Lock()
	defer ds.mu.Unlock()
	delete(ds.dispatchers, tenant)
}

// stopRun stops tenant's running dispatcher, if any, and waits for it.
func (ds *Dispatchers[E]) stopRun(tenant string) {
	ds.mu.Lock()
	r, ok := ds.runs[tenant]
	delete(ds.runs, tenant)
	ds.mu.Unlock()
	if ok {
		r.stop()
		<-r.done
	}
}

// startLocked runs d under Run's context; ds.mu must be held.
func (ds *Dispatchers[E]) startLocked(tenant string, d *Dispatcher[E]) {
	ctx, stop := context.WithCancel(ds.runCtx)
	done := make(chan struct{})
	ds.runs[tenant] = dispatcherRun{stop: stop, done: done}
	ds.wg.Add(1)
	go func() {
		defer ds.wg.Done()
		defer close(done)
		defer d.waiting.Store(false)
		ds.lead(ctx, tenant, d)
	}()
}

func (ds *Dispatchers[E]) dispatcher(tenant string) *Dispatcher[E] {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	return ds.dispatchers[tenant]
}

// Settled returns the hub that signals finished operations.
func (ds *Dispatchers[E]) Settled() *Settled { return &ds.settled }

// Notify signals that operation id is finished (for operations finished
// outside a dispatcher, such as a cancel).
func (ds *Dispatchers[E]) Notify(id string) { ds.settled.Notify(id) }

// Limits returns the tenant's queue limits (zero for an unknown tenant).
func (ds *Dispatchers[E]) Limits(tenant string) queue.Limits {
	if d := ds.dispatcher(tenant); d != nil {
		return d.cfg.Limits
	}
	return queue.Limits{}
}

// Interval returns the tenant's upstream pace (zero for an unknown tenant).
func (ds *Dispatchers[E]) Interval(tenant string) time.Duration {
	if d := ds.dispatcher(tenant); d != nil {
		return d.cfg.Interval
	}
	return 0
}

// nextStart is when the tenant's next upstream request could start.
func (ds *Dispatchers[E]) nextStart(tenant string) time.Time {
	if d := ds.dispatcher(tenant); d != nil && d.cfg.Gate != nil {
		return d.cfg.Gate.NextStart()
	}
	return ds.now()
}

// Estimate returns a queued operation's place in its tenant's dispatch order
// (1 = next) and when it is expected to start. ok is false for an operation
// that is not queued.
func (ds *Dispatchers[E]) Estimate(ctx context.Context, op queue.Operation) (position int, startAt time.Time, ok bool, err error) {
	if op.State != queue.Queued {
		return 0, time.Time{}, false, nil
	}
	ahead, depth, err := ds.store.Place(ctx, op)
	if err != nil {
		return 0, time.Time{}, false, fmt.Errorf("estimate %s: %w", op.ID, err)
	}
	position = queue.Position(ahead, op.Project, depth)
	startAt = ds.nextStart(op.Tenant).Add(time.Duration(position-1) * ds.Interval(op.Tenant))
	if op.NotBefore.After(startAt) {
		startAt = op.NotBefore
	}
	return position, startAt, true, nil
}

// Status describes a tenant's queue as a project sees it.
type Status struct {
	Depth  queue.Depth
	Limits queue.Limits
	// Interval is the tenant's upstream pace.
	Interval time.Duration
	// StartAt is when an operation of the project queued now would start.
	StartAt time.Time
}

// Status returns the tenant's queue as project sees it.
func (ds *Dispatchers[E]) Status(ctx context.Context, tenant, project string) (Status, error) {
	depth, err := ds.store.Depth(ctx, tenant)
	if err != nil {
		return Status{}, fmt.Errorf("queue status of %s: %w", tenant, err)
	}
	pos := queue.Position(depth.Projects[project], project, depth)
	return Status{
		Depth: depth, Limits: ds.Limits(tenant), Interval: ds.Interval(tenant),
		StartAt: ds.nextStart(tenant).Add(time.Duration(pos-1) * ds.Interval(tenant)),
	}, nil
}

// Wake tells tenant's dispatcher that work was enqueued.
func (ds *Dispatchers[E]) Wake(tenant string) {
	ds.mu.Lock()
	d := ds.dispatchers[tenant]
	ds.mu.Unlock()
	if d != nil {
		d.Wake()
	}
}

// Running reports whether every dispatcher is running, and names those that
// are not. A tenant without a dispatcher (disabled) is not counted.
func (ds *Dispatchers[E]) Running() (ok bool, stopped []string) {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	for t, d := range ds.dispatchers {
		if !d.Running() {
			stopped = append(stopped, t)
		}
	}
	return len(stopped) == 0, stopped
}

// Run runs every dispatcher (each first requeues its tenant's operations
// interrupted by an earlier crash), each while this replica leads its
// tenant (see UseLeases), until ctx ends and they have all stopped.
func (ds *Dispatchers[E]) Run(ctx context.Context) error {
	ds.mu.Lock()
	ds.runCtx = ctx
	for t, d := range ds.dispatchers {
		ds.startLocked(t, d)
	}
	ds.mu.Unlock()
	<-ctx.Done()
	ds.wg.Wait()
	return nil
}
