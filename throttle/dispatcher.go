package throttle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Handler carries out operations for one tenant. Execute is called for one
// operation at a time; it must make a replay harmless, because an operation
// interrupted by a crash is executed again (its Attempts is then > 1).
type Handler[E any] interface {
	Execute(ctx context.Context, op Operation) Outcome[E]
}

// Background is a tenant's low-priority upstream work, such as refreshing a
// mirror of the upstream's state. A dispatcher runs its steps only in
// upstream slots that no queued operation wants, one step at a time between
// operations, so an operation waits for at most one step.
type Background interface {
	// Due reports whether a step should run at now. If not, next is when one
	// may be due; zero means not until the dispatcher is woken.
	Due(now time.Time) (due bool, next time.Time)
	// Step carries out one step: at most one upstream request, paced by the
	// tenant's gate like an operation's.
	Step(ctx context.Context)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc[E any] func(ctx context.Context, op Operation) Outcome[E]

// Execute calls f.
func (f HandlerFunc[E]) Execute(ctx context.Context, op Operation) Outcome[E] { return f(ctx, op) }

// DispatcherConfig holds what a Dispatcher needs. Store, Handler and Tenant
// are required.
type DispatcherConfig[E any] struct {
	Tenant  string
	Store   Store[E]
	Handler Handler[E]
	Retry   RetryPolicy
	// Now defaults to time.Now.
	Now func() time.Time
	// Grace is how long an upstream call in flight at shutdown may run on
	// before it is cancelled; default 10s.
	Grace  time.Duration
	Logger *slog.Logger
	// OnSettled, if set, is called after an operation reaches a final state
	// and is committed.
	OnSettled func(Operation)
	// OnStarted, if set, is called after an operation is marked running,
	// before it is executed.
	OnStarted func(Operation)
	// Gate is the tenant's pacing gate, used for start-time estimates; it
	// may be nil (estimates then assume no wait).
	Gate *Gate
	// Limits bound the tenant's queue.
	Limits Limits
	// Interval is the tenant's upstream pace, for estimates; defaults to
	// the Gate's interval.
	Interval time.Duration
	// Background, if set, is low-priority work run only in upstream slots
	// that no queued operation wants.
	Background Background
	// Undo, if set, returns the effects that revert an operation's pending
	// state, committed when it fails without a handler's outcome (a panic
	// that used up its retries, an outcome of no kind).
	Undo func(op Operation, at time.Time) []E
	// Endings words the failures the dispatcher decides itself (retries
	// spent, an outcome it cannot use). If nil, the Handler is asked when
	// it implements Endings (groups.Executor does); otherwise the failures
	// carry no Status and say only what happened.
	Endings Endings
}

// Dispatcher runs one tenant's queue: it picks the next operation, marks it
// running, executes it, and commits the outcome, one at a time. The
// projects with work take turns (round robin, see NextProject); within a
// project operations run in submission order, and a retry keeps its place
// at the head of its project. Create with NewDispatcher; safe for
// concurrent use.
type Dispatcher[E any] struct {
	cfg     DispatcherConfig[E]
	endings Endings
	wake    chan struct{}
	running atomic.Bool
	// last is the project served last; only Run's goroutine uses it.
	last string
	// started is when Run began; only Run's goroutine uses it. The retry
	// window counts only time since then (see commit).
	started time.Time
}

// NewDispatcher returns a dispatcher for cfg.Tenant.
func NewDispatcher[E any](cfg DispatcherConfig[E]) *Dispatcher[E] {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Grace <= 0 {
		cfg.Grace = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Interval == 0 && cfg.Gate != nil {
		cfg.Interval = cfg.Gate.Interval()
	}
	cfg.Logger = cfg.Logger.With("tenant", cfg.Tenant)
	return &Dispatcher[E]{cfg: cfg, endings: endings(cfg), wake: make(chan struct{}, 1)}
}

// Wake tells the dispatcher that work was enqueued. It never blocks.
func (d *Dispatcher[E]) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Running reports whether Run is executing.
func (d *Dispatcher[E]) Running() bool { return d.running.Load() }

// Run processes the queue until ctx ends. It first puts back the tenant's
// operations left running (Store.RequeueRunning): this dispatcher owns the
// tenant's queue, so one still running was cut off. An operation in flight
// when ctx ends may finish within the grace period; otherwise it is left
// running in the store and requeued when a dispatcher of the tenant next
// starts. Run returns nil on shutdown.
func (d *Dispatcher[E]) Run(ctx context.Context) error {
	d.running.Store(true)
	defer d.running.Store(false)
	d.started = d.cfg.Now()
	// Upstream calls and the commits after them outlive ctx by up to Grace.
	execCtx, cancelExec := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelExec()
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(d.cfg.Grace, cancelExec)
		context.AfterFunc(execCtx, func() { t.Stop() })
	})
	defer stop()

	storeBackoff := RetryPolicy{BaseDelay: 100 * time.Millisecond, MaxDelay: 5 * time.Second}
	storeFailures := 0
	for ctx.Err() == nil {
		n, err := d.cfg.Store.RequeueRunning(ctx, d.cfg.Tenant, d.cfg.Now())
		if err == nil {
			if n > 0 {
				d.cfg.Logger.Info("requeued operations interrupted by the last shutdown", "count", n)
			}
			break
		}
		storeFailures++
		wait := storeBackoff.Backoff(storeFailures)
		d.cfg.Logger.Error("queue store error", "err", fmt.Errorf("requeue interrupted operations: %w", err), "retry_in", wait)
		d.sleep(ctx, wait)
	}
	storeFailures = 0
	for ctx.Err() == nil {
		wait, err := d.step(ctx, execCtx)
		if err != nil {
			storeFailures++
			wait = storeBackoff.Backoff(storeFailures)
			d.cfg.Logger.Error("queue store error", "err", err, "retry_in", wait)
		} else {
			storeFailures = 0
		}
		if wait != 0 {
			d.sleep(ctx, wait)
		}
	}
	return nil
}

// idle is the wait step returns when the queue is empty: until woken.
const idle = time.Duration(-1)

// sleep waits for d (or, for idle, indefinitely) until woken or ctx ends.
func (d *Dispatcher[E]) sleep(ctx context.Context, wait time.Duration) {
	var timer <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-ctx.Done():
	case <-d.wake:
	case <-timer:
	}
}

// ErrUnusableEffect marks an effect that can never be applied, however
// often its commit is tried: a nil effect, or one the domain refuses for
// what it is rather than for the state of the store. The domain's apply
// wraps it in the error that Store.Complete or Store.Progress returns; any
// other error of theirs is the store's (a full disk, a lost connection, a
// conflict) and is retried until the commit lands. The dispatcher fails an
// operation whose outcome's effects are unusable once, as Unworkable (see
// Endings), with its Undo effects (or none, if those are unusable too), and
// the queue goes on.
var ErrUnusableEffect = errors.New("effect cannot be applied")

// errNotQueued stops marking an operation running that was cancelled after
// it was picked.
var errNotQueued = errors.New("operation no longer queued")

// step runs the next due operation once. It returns how long to wait
// before the next step (0: go on at once; idle: until woken).
func (d *Dispatcher[E]) step(ctx, execCtx context.Context) (time.Duration, error) {
	// Pick only when the upstream slot is (nearly) free: the choice then
	// sees every project that has work by the time the request can start,
	// and an operation is not marked running while it waits for its slot
	// (it can still be cancelled then, and a shutdown leaves it queued).
	if d.cfg.Gate != nil {
		// Wake a little before the slot: picking and marking the operation
		// (a durable write) then happen while the interval runs out, not
		// after it. The gate still holds the request until the slot.
		lead := min(10*time.Millisecond, d.cfg.Gate.Interval()/10)
		if w := d.cfg.Gate.NextStart().Sub(d.cfg.Now()) - lead; w > 0 {
			return w, nil
		}
	}
	heads, err := d.cfg.Store.Heads(ctx, d.cfg.Tenant)
	if err != nil {
		return 0, fmt.Errorf("read queue heads: %w", err)
	}
	now := d.cfg.Now()
	var op Operation
	var ok bool
	var wake time.Time
	if len(heads) > 0 {
		op, ok, wake = NextProject(heads, d.last, now)
	}
	if !ok {
		return d.background(ctx, execCtx, now, wake), nil
	}
	d.last = op.Project
	op, err = d.cfg.Store.UpdateOperation(ctx, op.ID, func(o *Operation) error {
		// A head already running is not this dispatcher's (it runs one
		// operation at a time): a dispatcher it replaced was stopped with
		// that call cut off. Like an operation interrupted by a crash, it
		// is run again; the handler makes the replay harmless.
		if o.State != Queued && o.State != Running {
			return errNotQueued
		}
		now := d.cfg.Now()
		o.State = Running
		o.Attempts++
		if o.StartedAt.IsZero() {
			o.StartedAt = now
		}
		o.UpdatedAt = now
		return nil
	})
	if errors.Is(err, errNotQueued) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("mark %s running: %w", op.ID, err)
	}
	log := d.cfg.Logger.With("operation_id", op.ID, "project", op.Project, "kind", op.Kind, "attempt", op.Attempts)
	log.Debug("operation started")
	if d.cfg.OnStarted != nil {
		d.cfg.OnStarted(op)
	}

	out := d.execute(execCtx, op)
	if ctx.Err() != nil && execCtx.Err() != nil {
		// Cut off by shutdown: leave it running; it is requeued at start-up.
		log.Warn("operation interrupted by shutdown; it will be replayed at the next start")
		return 0, nil
	}
	return 0, d.commit(execCtx, log, op, out)
}

// background runs a step of the background work if one is due, in a slot no
// operation wants, and otherwise returns how long to wait: until wake (an
// operation's retry time, zero for none) or the background work's next
// step, whichever is first; idle when there is neither.
func (d *Dispatcher[E]) background(ctx, execCtx context.Context, now, wake time.Time) time.Duration {
	if bg := d.cfg.Background; bg != nil && ctx.Err() == nil {
		due, next := bg.Due(now)
		if due {
			d.runBackground(execCtx, bg)
			return 0
		}
		if !next.IsZero() && (wake.IsZero() || next.Before(wake)) {
			wake = next
		}
	}
	if wake.IsZero() {
		return idle
	}
	return max(wake.Sub(now), time.Millisecond)
}

// runBackground runs one background step, so that a panic in it cannot stop
// the tenant's queue.
func (d *Dispatcher[E]) runBackground(ctx context.Context, bg Background) {
	defer func() {
		if r := recover(); r != nil {
			d.cfg.Logger.Error("background step panicked", "panic", fmt.Sprint(r))
		}
	}()
	bg.Step(ctx)
}

// execute runs the handler, turning a panic into a retryable failure so one
// bad operation cannot stop the tenant's queue.
func (d *Dispatcher[E]) execute(ctx context.Context, op Operation) (out Outcome[E]) {
	defer func() {
		if r := recover(); r != nil {
			d.cfg.Logger.Error("handler panicked", "operation_id", op.ID, "panic", fmt.Sprint(r))
			out = Outcome[E]{Kind: Retry, Reason: "internal error", Effects: d.undo(op)}
		}
	}()
	return d.cfg.Handler.Execute(ctx, op)
}

func (d *Dispatcher[E]) commit(ctx context.Context, log *slog.Logger, op Operation, out Outcome[E]) error {
	now := d.cfg.Now()
	if out.CheckOnly {
		op.Attempts-- // marking it running counted the try as an attempt
	}
	switch out.Kind {
	case Retry:
		failures := op.Failures
		if !out.Throttled && !out.Check {
			failures++
		}
		// The retry window counts only time the operation spent retrying
		// under this dispatcher: a run of failures that began before it
		// started (the tenant was disabled, the gateway down or its queue
		// rebuilt meanwhile) restarts from its start.
		since := op.FailingSince
		switch {
		case since.IsZero():
			since = now
		case since.Before(d.started):
			since = d.started
		}
		if d.cfg.Retry.GiveUp(failures, since, now) {
			return d.finish(ctx, log, op, Outcome[E]{Kind: Fail, Effects: out.Effects,
				Failure: d.endings.RetriesSpent(op, now.Sub(since), out.Reason)})
		}
		wait := out.RetryAfter
		if wait == 0 {
			// Back off as for a failure; a throttling answer or a failed
			// check without a Retry-After backs off without counting one.
			wait = d.cfg.Retry.Backoff(max(failures, 1))
		}
		// The last try comes at the end of the retry window, not after it.
		if deadline := d.cfg.Retry.Deadline(since); now.Add(wait).After(deadline) {
			wait = max(deadline.Sub(now), 0)
		}
		_, err := d.cfg.Store.UpdateOperation(ctx, op.ID, func(o *Operation) error {
			o.State = Queued
			o.Attempts = op.Attempts
			o.Failures = failures
			o.FailingSince = since
			o.NotBefore = now.Add(wait)
			o.LastError = out.Reason
			o.UpdatedAt = now
			return nil
		})
		if err != nil {
			return fmt.Errorf("reschedule %s: %w", op.ID, err)
		}
		log.Info("operation will be retried", "reason", out.Reason, "retry_in", wait, "throttled", out.Throttled, "check", out.Check, "check_only", out.CheckOnly)
		return nil
	case Continue:
		return d.progress(ctx, log, op, out)
	case Done, Fail:
		return d.finish(ctx, log, op, out)
	default:
		return d.finish(ctx, log, op, Outcome[E]{Kind: Fail, Effects: d.undo(op), Failure: d.endings.Unworkable(op)})
	}
}

// progress commits one step of an operation carried out in several: the
// operation is queued again at its place, with its progress and the step's
// effects, and its failure count and retry window start over.
func (d *Dispatcher[E]) progress(ctx context.Context, log *slog.Logger, op Operation, out Outcome[E]) error {
	now := d.cfg.Now()
	op.State, op.Progress, op.Failures, op.LastError = Queued, out.Progress, 0, ""
	op.NotBefore, op.FailingSince, op.UpdatedAt = time.Time{}, time.Time{}, now
	// As for a final outcome, the step happened upstream: keep trying
	// until it is recorded or execution is cut off.
	err := d.persist(ctx, log, "commit of a step", func() error { return d.cfg.Store.Progress(ctx, op, out.Effects) })
	if errors.Is(err, ErrUnusableEffect) {
		log.Error("the step's effects cannot be applied; failing the operation", "err", err)
		return d.finish(ctx, log, op, Outcome[E]{Kind: Fail, Effects: d.undo(op), Failure: d.endings.Unworkable(op)})
	}
	if err != nil {
		return fmt.Errorf("commit a step of %s: %w", op.ID, err)
	}
	log.Debug("operation step done")
	return nil
}

// persist runs write until it succeeds or ctx ends, backing off between
// tries: what happened upstream must not be lost to a transient store error.
func (d *Dispatcher[E]) persist(ctx context.Context, log *slog.Logger, what string, write func() error) error {
	backoff := RetryPolicy{BaseDelay: 50 * time.Millisecond, MaxDelay: 2 * time.Second}
	for i := 1; ; i++ {
		err := write()
		if err == nil || ctx.Err() != nil || errors.Is(err, ErrUnusableEffect) {
			return err
		}
		log.Error(what+" failed; retrying", "err", err)
		t := time.NewTimer(backoff.Backoff(i))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
}

func (d *Dispatcher[E]) undo(op Operation) []E {
	if d.cfg.Undo == nil {
		return nil
	}
	return d.cfg.Undo(op, d.cfg.Now())
}

func (d *Dispatcher[E]) finish(ctx context.Context, log *slog.Logger, op Operation, out Outcome[E]) error {
	now := d.cfg.Now()
	op.UpdatedAt, op.FinishedAt = now, now
	op.NotBefore = time.Time{}
	if out.Kind == Done {
		op.State, op.Result, op.Failure = Succeeded, out.Result, nil
	} else {
		op.State, op.Failure = Failed, out.Failure
	}
	// The upstream call is done: committing must not be lost to a transient
	// store error, so keep trying until it lands or execution is cut off.
	err := d.persist(ctx, log, "commit outcome", func() error { return d.cfg.Store.Complete(ctx, op, out.Effects) })
	if errors.Is(err, ErrUnusableEffect) {
		// Retrying would stall the queue for good: fail the operation
		// once, releasing what it holds if that can be applied.
		log.Error("the outcome's effects cannot be applied; failing the operation", "err", err)
		op.State, op.Result, op.Failure = Failed, nil, d.endings.Unworkable(op)
		err = d.persist(ctx, log, "commit outcome", func() error {
			err := d.cfg.Store.Complete(ctx, op, d.undo(op))
			if errors.Is(err, ErrUnusableEffect) {
				return d.cfg.Store.Complete(ctx, op, nil)
			}
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("commit outcome of %s: %w", op.ID, err)
	}
	if op.State == Succeeded {
		log.Info("operation succeeded", "target", op.Target)
	} else {
		log.Warn("operation failed", "target", op.Target, "reason", op.Failure.Detail)
	}
	if d.cfg.OnSettled != nil {
		d.cfg.OnSettled(op)
	}
	return nil
}

// Queue owns the dispatchers of every tenant and answers questions about
// their queues (limits, pace, estimates). Create with NewQueue, add tenants,
// then Run. Safe for concurrent use once running.
type Queue[E any] struct {
	store       Store[E]
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
func NewQueue[E any](store Store[E], now func() time.Time, logger *slog.Logger) *Queue[E] {
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Queue[E]{store: store, dispatchers: map[string]*Dispatcher[E]{}, runs: map[string]dispatcherRun{}, now: now, logger: logger}
}

// Put adds or replaces the dispatcher of cfg.Tenant, filling Store, Now
// and Logger from the queue when unset. Called before Run it is started by
// Run; if the queue is running, a dispatcher being replaced is stopped first
// (its call in flight may finish within its grace) and the new one started.
func (q *Queue[E]) Put(cfg DispatcherConfig[E]) {
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
	cfg.OnSettled = func(op Operation) {
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
func (q *Queue[E]) Remove(tenant string) {
	q.stopRun(tenant)
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.dispatchers, tenant)
}

// stopRun stops tenant's running dispatcher, if any, and waits for it.
func (q *Queue[E]) stopRun(tenant string) {
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
func (q *Queue[E]) startLocked(tenant string, d *Dispatcher[E]) {
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

func (q *Queue[E]) dispatcher(tenant string) *Dispatcher[E] {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.dispatchers[tenant]
}

// Settled returns the hub that signals finished operations.
func (q *Queue[E]) Settled() *Settled { return &q.settled }

// Notify signals that operation id is finished (for operations finished
// outside a dispatcher, such as a cancel).
func (q *Queue[E]) Notify(id string) { q.settled.Notify(id) }

// Limits returns the tenant's queue limits (zero for an unknown tenant).
func (q *Queue[E]) Limits(tenant string) Limits {
	if d := q.dispatcher(tenant); d != nil {
		return d.cfg.Limits
	}
	return Limits{}
}

// Interval returns the tenant's upstream pace (zero for an unknown tenant).
func (q *Queue[E]) Interval(tenant string) time.Duration {
	if d := q.dispatcher(tenant); d != nil {
		return d.cfg.Interval
	}
	return 0
}

// nextStart is when the tenant's next upstream request could start.
func (q *Queue[E]) nextStart(tenant string) time.Time {
	if d := q.dispatcher(tenant); d != nil && d.cfg.Gate != nil {
		return d.cfg.Gate.NextStart()
	}
	return q.now()
}

// Estimate returns a queued operation's place in its tenant's dispatch order
// (1 = next) and when it is expected to start. ok is false for an operation
// that is not queued.
func (q *Queue[E]) Estimate(ctx context.Context, op Operation) (position int, startAt time.Time, ok bool, err error) {
	if op.State != Queued {
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
	position = Position(ahead, op.Project, depth)
	startAt = q.nextStart(op.Tenant).Add(time.Duration(position-1) * q.Interval(op.Tenant))
	if op.NotBefore.After(startAt) {
		startAt = op.NotBefore
	}
	return position, startAt, true, nil
}

// Status describes a tenant's queue as a project sees it.
type Status struct {
	Depth  Depth
	Limits Limits
	// Interval is the tenant's upstream pace.
	Interval time.Duration
	// StartAt is when an operation of the project queued now would start.
	StartAt time.Time
}

// Status returns the tenant's queue as project sees it.
func (q *Queue[E]) Status(ctx context.Context, tenant, project string) (Status, error) {
	depth, err := q.store.Depth(ctx, tenant)
	if err != nil {
		return Status{}, fmt.Errorf("queue status of %s: %w", tenant, err)
	}
	pos := Position(depth.Projects[project], project, depth)
	return Status{
		Depth: depth, Limits: q.Limits(tenant), Interval: q.Interval(tenant),
		StartAt: q.nextStart(tenant).Add(time.Duration(pos-1) * q.Interval(tenant)),
	}, nil
}

// Wake tells tenant's dispatcher that work was enqueued.
func (q *Queue[E]) Wake(tenant string) {
	q.mu.Lock()
	d := q.dispatchers[tenant]
	q.mu.Unlock()
	if d != nil {
		d.Wake()
	}
}

// Running reports whether every dispatcher is running, and names those that
// are not. A tenant without a dispatcher (disabled) is not counted.
func (q *Queue[E]) Running() (ok bool, stopped []string) {
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
func (q *Queue[E]) Run(ctx context.Context) error {
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
