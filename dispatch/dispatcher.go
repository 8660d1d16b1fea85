package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/groupgate/groupgate/pacing"
	"github.com/groupgate/groupgate/queue"
)

// Handler carries out operations for one tenant. Execute is called for one
// operation at a time; it must make a replay harmless, because an operation
// interrupted by a crash is executed again (its Attempts is then > 1).
type Handler[E any] interface {
	Execute(ctx context.Context, op queue.Operation) Outcome[E]
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
type HandlerFunc[E any] func(ctx context.Context, op queue.Operation) Outcome[E]

// Execute calls f.
func (f HandlerFunc[E]) Execute(ctx context.Context, op queue.Operation) Outcome[E] {
	return f(ctx, op)
}

// Config holds what a Dispatcher needs. Store, Handler and Tenant
// are required.
type Config[E any] struct {
	Tenant  string
	Store   queue.Store[E]
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
	OnSettled func(queue.Operation)
	// OnStarted, if set, is called after an operation is marked running,
	// before it is executed.
	OnStarted func(queue.Operation)
	// Gate is the tenant's pacing gate, used for start-time estimates; it
	// may be nil (estimates then assume no wait).
	Gate *pacing.Gate
	// Limits bound the tenant's queue.
	Limits queue.Limits
	// Interval is the tenant's upstream pace, for estimates; defaults to
	// the Gate's interval.
	Interval time.Duration
	// Background, if set, is low-priority work run only in upstream slots
	// that no queued operation wants.
	Background Background
	// Undo, if set, returns the effects that revert an operation's pending
	// state, committed when it fails without a handler's outcome (a panic
	// that used up its retries, an outcome of no kind).
	Undo func(op queue.Operation, at time.Time) []E
	// Endings words the failures the dispatcher decides itself (retries
	// spent, an outcome it cannot use). If nil, the Handler is asked when
	// it implements Endings (groups.Executor does); otherwise the failures
	// carry no Status and say only what happened.
	Endings Endings
}

// Dispatcher runs one tenant's queue: it picks the next operation, marks it
// running, executes it, and commits the outcome, one at a time. The
// projects with work take turns (round robin, see queue.NextProject); within a
// project operations run in submission order, and a retry keeps its place
// at the head of its project. Create with NewDispatcher; safe for
// concurrent use.
type Dispatcher[E any] struct {
	cfg     Config[E]
	endings Endings
	wake    chan struct{}
	running atomic.Bool
	// last is the project served last; only Run's goroutine uses it.
	last string
	// started is when Run began; only Run's goroutine uses it. The retry
	// window counts only time since then (see commit).
	started time.Time
	// store is the store of the run: cfg.Store, fenced under a lead.
	// Only Run's goroutine uses it.
	store queue.Store[E]
	// waiting is set while Dispatchers waits to lead the tenant.
	waiting atomic.Bool
}

// NewDispatcher returns a dispatcher for cfg.Tenant.
func NewDispatcher[E any](cfg Config[E]) *Dispatcher[E] {
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

// Running reports whether Run is executing, or Dispatchers is waiting to
// lead the tenant to run it.
func (d *Dispatcher[E]) Running() bool { return d.running.Load() || d.waiting.Load() }

// Run processes the queue until ctx ends. It first puts back the tenant's
// operations left running (Store.RequeueRunning): this dispatcher owns the
// tenant's queue, so one still running was cut off. An operation in flight
// when ctx ends may finish within the grace period; otherwise it is left
// running in the store and requeued when a dispatcher of the tenant next
// starts. Run returns nil on shutdown.
func (d *Dispatcher[E]) Run(ctx context.Context) error { return d.run(ctx, nil) }

// RunLed is Run while lead lasts (see Leases): it stops at once when the
// lead's context ends (an upstream call in flight is cancelled then, with
// no grace: the lease may be about to lapse), and returns nil. With a
// nonzero epoch every write goes through the store fenced by it (the Store
// must implement Fencing), Background work is fenced too when it
// implements FencedBackground, and a RecordedLead's pacing record is
// attached to the Gate for the lead's duration. A write refused by the
// fence ends RunLed with an error wrapping queue.ErrFenced.
func (d *Dispatcher[E]) RunLed(ctx context.Context, lead Lead) error { return d.run(ctx, lead) }

func (d *Dispatcher[E]) run(ctx context.Context, lead Lead) error {
	d.running.Store(true)
	defer d.running.Store(false)
	d.started = d.cfg.Now()
	d.store = d.cfg.Store
	// Upstream calls and the commits after them outlive ctx by up to Grace.
	execCtx, cancelExec := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelExec()
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(d.cfg.Grace, cancelExec)
		context.AfterFunc(execCtx, func() { t.Stop() })
	})
	defer stop()
	if lead != nil {
		// A lost lead stops everything at once: the next leader may be
		// about to start.
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		stopLoop := context.AfterFunc(lead.Context(), func() { cancel(); cancelExec() })
		defer stopLoop()
		if err := d.lead(ctx, lead); err != nil {
			return err
		}
		if d.cfg.Gate != nil {
			defer d.cfg.Gate.Detach()
		}
	}

	storeBackoff := RetryPolicy{BaseDelay: 100 * time.Millisecond, MaxDelay: 5 * time.Second}
	storeFailures := 0
	for ctx.Err() == nil {
		n, err := d.store.RequeueRunning(ctx, d.cfg.Tenant, d.cfg.Now())
		if err == nil {
			if n > 0 {
				d.cfg.Logger.Info("requeued operations interrupted by the last shutdown", "count", n)
			}
			break
		}
		if errors.Is(err, queue.ErrFenced) {
			return fmt.Errorf("requeue interrupted operations: %w", err)
		}
		storeFailures++
		wait := storeBackoff.Backoff(storeFailures)
		d.cfg.Logger.Error("queue store error", "err", fmt.Errorf("requeue interrupted operations: %w", err), "retry_in", wait)
		d.sleep(ctx, wait)
	}
	storeFailures = 0
	for ctx.Err() == nil {
		wait, err := d.step(ctx, execCtx)
		if errors.Is(err, queue.ErrFenced) {
			d.cfg.Logger.Warn("no longer the tenant's leader; stopping", "err", err)
			return err
		}
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

// lead prepares a run under lead: the fenced store, the fenced background
// work, and the gate's pacing record (retried until it is read or ctx
// ends).
func (d *Dispatcher[E]) lead(ctx context.Context, lead Lead) error {
	epoch := lead.Epoch()
	if epoch != 0 {
		f, ok := d.cfg.Store.(Fencing[E])
		if !ok {
			return fmt.Errorf("dispatch %s: the lead has epoch %d but the store cannot fence its writes", d.cfg.Tenant, epoch)
		}
		d.store = f.Fenced(epoch)
		if bg, ok := d.cfg.Background.(FencedBackground); ok {
			bg.Fence(epoch)
		}
	}
	rl, ok := lead.(RecordedLead)
	if !ok || d.cfg.Gate == nil {
		return nil
	}
	backoff := RetryPolicy{BaseDelay: 100 * time.Millisecond, MaxDelay: 5 * time.Second}
	for i := 1; ctx.Err() == nil; i++ {
		err := d.cfg.Gate.Attach(ctx, rl.PacingRecord())
		if err == nil {
			return nil
		}
		wait := backoff.Backoff(i)
		d.cfg.Logger.Error("read the pacing record", "err", err, "retry_in", wait)
		d.sleep(ctx, wait)
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
	heads, err := d.store.Heads(ctx, d.cfg.Tenant)
	if err != nil {
		return 0, fmt.Errorf("read queue heads: %w", err)
	}
	now := d.cfg.Now()
	var op queue.Operation
	var ok bool
	var wake time.Time
	if len(heads) > 0 {
		op, ok, wake = queue.NextProject(heads, d.last, now)
	}
	if !ok {
		return d.background(ctx, execCtx, now, wake), nil
	}
	d.last = op.Project
	op, err = d.store.UpdateOperation(ctx, op.ID, func(o *queue.Operation) error {
		// A head already running is not this dispatcher's (it runs one
		// operation at a time): a dispatcher it replaced was stopped with
		// that call cut off. Like an operation interrupted by a crash, it
		// is run again; the handler makes the replay harmless.
		if o.State != queue.Queued && o.State != queue.Running {
			return errNotQueued
		}
		now := d.cfg.Now()
		o.State = queue.Running
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
func (d *Dispatcher[E]) execute(ctx context.Context, op queue.Operation) (out Outcome[E]) {
	defer func() {
		if r := recover(); r != nil {
			d.cfg.Logger.Error("handler panicked", "operation_id", op.ID, "panic", fmt.Sprint(r))
			out = Outcome[E]{Kind: Retry, Reason: "internal error", Effects: d.undo(op)}
		}
	}()
	return d.cfg.Handler.Execute(ctx, op)
}

func (d *Dispatcher[E]) commit(ctx context.Context, log *slog.Logger, op queue.Operation, out Outcome[E]) error {
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
		_, err := d.store.UpdateOperation(ctx, op.ID, func(o *queue.Operation) error {
			o.State = queue.Queued
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
func (d *Dispatcher[E]) progress(ctx context.Context, log *slog.Logger, op queue.Operation, out Outcome[E]) error {
	now := d.cfg.Now()
	op.State, op.Progress, op.Failures, op.LastError = queue.Queued, out.Progress, 0, ""
	op.NotBefore, op.FailingSince, op.UpdatedAt = time.Time{}, time.Time{}, now
	// As for a final outcome, the step happened upstream: keep trying
	// until it is recorded or execution is cut off.
	err := d.persist(ctx, log, "commit of a step", func() error { return d.store.Progress(ctx, op, out.Effects) })
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
		if err == nil || ctx.Err() != nil || errors.Is(err, ErrUnusableEffect) || errors.Is(err, queue.ErrFenced) {
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

func (d *Dispatcher[E]) undo(op queue.Operation) []E {
	if d.cfg.Undo == nil {
		return nil
	}
	return d.cfg.Undo(op, d.cfg.Now())
}

func (d *Dispatcher[E]) finish(ctx context.Context, log *slog.Logger, op queue.Operation, out Outcome[E]) error {
	now := d.cfg.Now()
	op.UpdatedAt, op.FinishedAt = now, now
	op.NotBefore = time.Time{}
	if out.Kind == Done {
		op.State, op.Result, op.Failure = queue.Succeeded, out.Result, nil
	} else {
		op.State, op.Failure = queue.Failed, out.Failure
	}
	// The upstream call is done: committing must not be lost to a transient
	// store error, so keep trying until it lands or execution is cut off.
	err := d.persist(ctx, log, "commit outcome", func() error { return d.store.Complete(ctx, op, out.Effects) })
	if errors.Is(err, ErrUnusableEffect) {
		// Retrying would stall the queue for good: fail the operation
		// once, releasing what it holds if that can be applied.
		log.Error("the outcome's effects cannot be applied; failing the operation", "err", err)
		op.State, op.Result, op.Failure = queue.Failed, nil, d.endings.Unworkable(op)
		err = d.persist(ctx, log, "commit outcome", func() error {
			err := d.store.Complete(ctx, op, d.undo(op))
			if errors.Is(err, ErrUnusableEffect) {
				return d.store.Complete(ctx, op, nil)
			}
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("commit outcome of %s: %w", op.ID, err)
	}
	if op.State == queue.Succeeded {
		log.Info("operation succeeded", "target", op.Target)
	} else {
		log.Warn("operation failed", "target", op.Target, "reason", op.Failure.Detail)
	}
	if d.cfg.OnSettled != nil {
		d.cfg.OnSettled(op)
	}
	return nil
}
