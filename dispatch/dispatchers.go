package dispatch

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/groupgate/groupgate/queue"
)

// Queue owns the dispatchers of every tenant and answers questions about
// their queues (limits, pace, estimates). Create with NewQueue, add tenants,
// then Run. Safe for concurrent use once running.
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
}

type dispatcherRun struct {
	stop context.CancelFunc
	done chan struct{}
}

// NewQueue returns a queue over store.
func NewDispatchers[E any](store queue.Store[E], now func() time.Time, logger *slog.Logger) *Dispatchers[E] {
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Dispatchers[E]{store: store, dispatchers: map[string]*Dispatcher[E]{}, runs: map[string]dispatcherRun{}, now: now, logger: logger}
}

// Put adds or replaces the dispatcher of cfg.Tenant, filling Store, Now
// and Logger from the queue when unset. Called before Run it is started by
// Run; if the queue is running, a dispatcher being replaced is stopped first
// (its call in flight may finish within its grace) and the new one started.
func (q *Dispatchers[E]) Put(cfg Config[E]) {
	if cfg.Store == nil {
		cfg.Store = q.store
	}
	if cfg.Now == nil {
		cfg.Now = q.now
	}
	if cfg.Logger == nil {
		cfg.Logger = q.logger
	}
	onSettled := cfg.OnSettled
	cfg.OnSettled = func(op queue.Operation) {
		if onSettled != nil {
			onSettled(op)
		}
		q.settled.Notify(op.ID)
	}
	d := NewDispatcher(cfg)
	q.stopRun(cfg.Tenant)
	q.mu.Lock()
	defer q.mu.Unlock()
	q.dispatchers[cfg.Tenant] = d
	if q.runCtx != nil {
		q.startLocked(cfg.Tenant, d)
	}
}

// Remove stops and forgets tenant's dispatcher: its queue is kept in the
// store and resumes when a dispatcher is put back.
func (q *Dispatchers[E]) Remove(tenant string) {
	q.stopRun(tenant)
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.dispatchers, tenant)
}

// stopRun stops tenant's running dispatcher, if any, and waits for it.
func (q *Dispatchers[E]) stopRun(tenant string) {
	q.mu.Lock()
	r, ok := q.runs[tenant]
	delete(q.runs, tenant)
	q.mu.Unlock()
	if ok {
		r.stop()
		<-r.done
	}
}

// startLocked runs d under the queue's context; q.mu must be held.
func (q *Dispatchers[E]) startLocked(tenant string, d *Dispatcher[E]) {
	ctx, stop := context.WithCancel(q.runCtx)
	done := make(chan struct{})
	q.runs[tenant] = dispatcherRun{stop: stop, done: done}
	q.wg.Add(1)
	go func() {
		defer q.wg.Done()
		defer close(done)
		_ = d.Run(ctx)
	}()
}

func (q *Dispatchers[E]) dispatcher(tenant string) *Dispatcher[E] {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.dispatchers[tenant]
}

// Settled returns the hub that signals finished operations.
func (q *Dispatchers[E]) Settled() *Settled { return &q.settled }

// Notify signals that operation id is finished (for operations finished
// outside a dispatcher, such as a cancel).
func (q *Dispatchers[E]) Notify(id string) { q.settled.Notify(id) }

// Limits returns the tenant's queue limits (zero for an unknown tenant).
func (q *Dispatchers[E]) Limits(tenant string) queue.Limits {
	if d := q.dispatcher(tenant); d != nil {
		return d.cfg.Limits
	}
	return queue.Limits{}
}

// Interval returns the tenant's upstream pace (zero for an unknown tenant).
func (q *Dispatchers[E]) Interval(tenant string) time.Duration {
	if d := q.dispatcher(tenant); d != nil {
		return d.cfg.Interval
	}
	return 0
}

// nextStart is when the tenant's next upstream request could start.
func (q *Dispatchers[E]) nextStart(tenant string) time.Time {
	if d := q.dispatcher(tenant); d != nil && d.cfg.Gate != nil {
		return d.cfg.Gate.NextStart()
	}
	return q.now()
}

// Estimate returns a queued operation's place in its tenant's dispatch order
// (1 = next) and when it is expected to start. ok is false for an operation
// that is not queued.
func (q *Dispatchers[E]) Estimate(ctx context.Context, op queue.Operation) (position int, startAt time.Time, ok bool, err error) {
	if op.State != queue.Queued {
		return 0, time.Time{}, false, nil
	}
	ahead, err := q.store.Ahead(ctx, op)
	if err != nil {
		return 0, time.Time{}, false, fmt.Errorf("estimate %s: %w", op.ID, err)
	}
	depth, err := q.store.Depth(ctx, op.Tenant)
	if err != nil {
		return 0, time.Time{}, false, fmt.Errorf("estimate %s: %w", op.ID, err)
	}
	position = queue.Position(ahead, op.Project, depth)
	startAt = q.nextStart(op.Tenant).Add(time.Duration(position-1) * q.Interval(op.Tenant))
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
func (q *Dispatchers[E]) Status(ctx context.Context, tenant, project string) (Status, error) {
	depth, err := q.store.Depth(ctx, tenant)
	if err != nil {
		return Status{}, fmt.Errorf("queue status of %s: %w", tenant, err)
	}
	pos := queue.Position(depth.Projects[project], project, depth)
	return Status{
		Depth: depth, Limits: q.Limits(tenant), Interval: q.Interval(tenant),
		StartAt: q.nextStart(tenant).Add(time.Duration(pos-1) * q.Interval(tenant)),
	}, nil
}

// Wake tells tenant's dispatcher that work was enqueued.
func (q *Dispatchers[E]) Wake(tenant string) {
	q.mu.Lock()
	d := q.dispatchers[tenant]
	q.mu.Unlock()
	if d != nil {
		d.Wake()
	}
}

// Running reports whether every dispatcher is running, and names those that
// are not. A tenant without a dispatcher (disabled) is not counted.
func (q *Dispatchers[E]) Running() (ok bool, stopped []string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for t, d := range q.dispatchers {
		if !d.Running() {
			stopped = append(stopped, t)
		}
	}
	return len(stopped) == 0, stopped
}

// Run runs every dispatcher (each first requeues its tenant's operations
// interrupted by an earlier crash) until ctx ends and they have all stopped.
func (q *Dispatchers[E]) Run(ctx context.Context) error {
	q.mu.Lock()
	q.runCtx = ctx
	for t, d := range q.dispatchers {
		q.startLocked(t, d)
	}
	q.mu.Unlock()
	<-ctx.Done()
	q.wg.Wait()
	return nil
}
