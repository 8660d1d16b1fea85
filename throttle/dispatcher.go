package throttle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Handler carries out operations for one tenant. Execute is called for one
// operation at a time; it must make a replay harmless, because an operation
// interrupted by a crash is executed again (its Attempts is then > 1).
type Handler interface {
	Execute(ctx context.Context, op Operation) Outcome
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, op Operation) Outcome

// Execute calls f.
func (f HandlerFunc) Execute(ctx context.Context, op Operation) Outcome { return f(ctx, op) }

// DispatcherConfig holds what a Dispatcher needs. Store, Handler and Tenant
// are required.
type DispatcherConfig struct {
	Tenant  string
	Store   Store
	Handler Handler
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
}

// Dispatcher runs one tenant's queue: it takes the first pending operation,
// marks it running, executes it, and commits the outcome, one at a time, in
// queue order (a retry keeps its place at the head). Create with
// NewDispatcher; safe for concurrent use.
type Dispatcher struct {
	cfg     DispatcherConfig
	wake    chan struct{}
	running atomic.Bool
}

// NewDispatcher returns a dispatcher for cfg.Tenant.
func NewDispatcher(cfg DispatcherConfig) *Dispatcher {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Grace <= 0 {
		cfg.Grace = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Logger = cfg.Logger.With("tenant", cfg.Tenant)
	return &Dispatcher{cfg: cfg, wake: make(chan struct{}, 1)}
}

// Wake tells the dispatcher that work was enqueued. It never blocks.
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Running reports whether Run is executing.
func (d *Dispatcher) Running() bool { return d.running.Load() }

// Run processes the queue until ctx ends. An operation in flight when ctx
// ends may finish within the grace period; otherwise it is left running in
// the store and requeued at the next start-up. Run returns nil on shutdown.
func (d *Dispatcher) Run(ctx context.Context) error {
	d.running.Store(true)
	defer d.running.Store(false)
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
func (d *Dispatcher) sleep(ctx context.Context, wait time.Duration) {
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

// step handles the head of the queue once. It returns how long to wait
// before the next step (0: go on at once; idle: until woken).
func (d *Dispatcher) step(ctx, execCtx context.Context) (time.Duration, error) {
	op, err := d.cfg.Store.Head(ctx, d.cfg.Tenant)
	if errors.Is(err, ErrEmpty) {
		return idle, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read queue head: %w", err)
	}
	if w := op.NotBefore.Sub(d.cfg.Now()); w > 0 {
		return w, nil
	}
	op, err = d.cfg.Store.UpdateOperation(ctx, op.ID, func(o *Operation) error {
		now := d.cfg.Now()
		o.State = Running
		o.Attempts++
		if o.StartedAt.IsZero() {
			o.StartedAt = now
		}
		o.UpdatedAt = now
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("mark %s running: %w", op.ID, err)
	}
	log := d.cfg.Logger.With("operation_id", op.ID, "project", op.Project, "kind", op.Kind, "attempt", op.Attempts)
	log.Debug("operation started")

	out := d.execute(execCtx, op)
	if ctx.Err() != nil && execCtx.Err() != nil {
		// Cut off by shutdown: leave it running; it is requeued at start-up.
		log.Warn("operation interrupted by shutdown; it will be replayed at the next start")
		return 0, nil
	}
	return 0, d.commit(execCtx, log, op, out)
}

// execute runs the handler, turning a panic into a retryable failure so one
// bad operation cannot stop the tenant's queue.
func (d *Dispatcher) execute(ctx context.Context, op Operation) (out Outcome) {
	defer func() {
		if r := recover(); r != nil {
			d.cfg.Logger.Error("handler panicked", "operation_id", op.ID, "panic", fmt.Sprint(r))
			out = Outcome{Kind: Retry, Reason: "internal error"}
		}
	}()
	return d.cfg.Handler.Execute(ctx, op)
}

func (d *Dispatcher) commit(ctx context.Context, log *slog.Logger, op Operation, out Outcome) error {
	now := d.cfg.Now()
	switch out.Kind {
	case Retry:
		failures := op.Failures
		wait := out.RetryAfter
		if !out.Throttled {
			failures++
			if d.cfg.Retry.GiveUp(failures) {
				detail := "TechPass did not succeed after several attempts"
				if out.Reason != "" {
					detail += "; last error: " + out.Reason
				}
				return d.finish(ctx, log, op, Outcome{Kind: Fail, Effects: out.Effects, Failure: &Failure{
					Status: http.StatusBadGateway, Title: "Upstream unavailable", Detail: detail,
				}})
			}
			if wait == 0 {
				wait = d.cfg.Retry.Backoff(failures)
			}
		}
		_, err := d.cfg.Store.UpdateOperation(ctx, op.ID, func(o *Operation) error {
			o.State = Queued
			o.Failures = failures
			o.NotBefore = now.Add(wait)
			o.LastError = out.Reason
			o.UpdatedAt = now
			return nil
		})
		if err != nil {
			return fmt.Errorf("reschedule %s: %w", op.ID, err)
		}
		log.Info("operation will be retried", "reason", out.Reason, "retry_in", wait, "throttled", out.Throttled)
		return nil
	case Done, Fail:
		return d.finish(ctx, log, op, out)
	default:
		return d.finish(ctx, log, op, Outcome{Kind: Fail, Failure: &Failure{Status: http.StatusInternalServerError, Title: "Internal error"}})
	}
}

func (d *Dispatcher) finish(ctx context.Context, log *slog.Logger, op Operation, out Outcome) error {
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
	backoff := RetryPolicy{BaseDelay: 50 * time.Millisecond, MaxDelay: 2 * time.Second}
	for i := 1; ; i++ {
		err := d.cfg.Store.Complete(ctx, op, out.Effects)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("commit outcome of %s: %w", op.ID, err)
		}
		log.Error("commit outcome failed; retrying", "err", err)
		t := time.NewTimer(backoff.Backoff(i))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
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

// Queue owns the dispatchers of every tenant. Create with NewQueue, add
// tenants, then Run. Safe for concurrent use once running.
type Queue struct {
	store       Store
	mu          sync.Mutex
	dispatchers map[string]*Dispatcher
	now         func() time.Time
	logger      *slog.Logger
}

// NewQueue returns a queue over store.
func NewQueue(store Store, now func() time.Time, logger *slog.Logger) *Queue {
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Queue{store: store, dispatchers: map[string]*Dispatcher{}, now: now, logger: logger}
}

// Add registers a dispatcher for cfg.Tenant, filling Store, Now and Logger
// from the queue when unset. It must be called before Run.
func (q *Queue) Add(cfg DispatcherConfig) {
	if cfg.Store == nil {
		cfg.Store = q.store
	}
	if cfg.Now == nil {
		cfg.Now = q.now
	}
	if cfg.Logger == nil {
		cfg.Logger = q.logger
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.dispatchers[cfg.Tenant] = NewDispatcher(cfg)
}

// Wake tells tenant's dispatcher that work was enqueued.
func (q *Queue) Wake(tenant string) {
	q.mu.Lock()
	d := q.dispatchers[tenant]
	q.mu.Unlock()
	if d != nil {
		d.Wake()
	}
}

// Running reports whether every dispatcher is running, and names those that
// are not.
func (q *Queue) Running() (ok bool, stopped []string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for t, d := range q.dispatchers {
		if !d.Running() {
			stopped = append(stopped, t)
		}
	}
	return len(stopped) == 0, stopped
}

// Run requeues operations interrupted by an earlier crash, then runs every
// dispatcher until ctx ends and they have all stopped.
func (q *Queue) Run(ctx context.Context) error {
	n, err := q.store.RequeueRunning(ctx, q.now())
	if err != nil {
		return fmt.Errorf("requeue interrupted operations: %w", err)
	}
	if n > 0 {
		q.logger.Info("requeued operations interrupted by the last shutdown", "count", n)
	}
	q.mu.Lock()
	var wg sync.WaitGroup
	for _, d := range q.dispatchers {
		wg.Go(func() { _ = d.Run(ctx) })
	}
	q.mu.Unlock()
	wg.Wait()
	return nil
}
