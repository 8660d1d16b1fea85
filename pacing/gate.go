package pacing

import (
	"context"
	"sync"
	"time"
)

// Delay returns how long a request that wants to start at now must wait so
// that it starts at least interval after last (the previous start) and not
// before hold (a Retry-After given by the upstream). A zero last means no
// request has started yet. The result is never negative.
func Delay(now, last, hold time.Time, interval time.Duration) time.Duration {
	var d time.Duration
	if !last.IsZero() {
		d = last.Add(interval).Sub(now)
	}
	if !hold.IsZero() {
		if h := hold.Sub(now); h > d {
			d = h
		}
	}
	if d < 0 {
		return 0
	}
	return d
}

// Gate paces one tenant's upstream requests: at most one in flight, and at
// least Interval between the starts of two requests, measured on the
// monotonic clock. Unlike a token bucket it has no grid and no burst, so a
// strict upstream never sees a gap shorter than Interval.
//
// A Gate must be created with NewGate. It is safe for concurrent use.
type Gate struct {
	interval time.Duration
	now      func() time.Time
	slot     chan struct{}

	mu   sync.Mutex
	last time.Time
	hold time.Time
	// planned is when the request in flight was due to start: the end of
	// its wait, or the moment it asked if it did not wait; seen is whether
	// its real start was reported to lateness already.
	planned  time.Time
	seen     bool
	lateness func(time.Duration)
	// rec, if set, is the durable record shared with other replicas
	// (Attach); attached counts the calls of Attach, so that a wait can
	// tell it was given another record.
	rec      Record
	attached uint64
}

// ObserveLateness makes the gate report, for every request whose real
// start is reported (see Started), how long after its planned start it was
// really sent: timer and scheduling delays and connection set-up. That is
// the jitter the interval's guard must absorb. Call it before the gate is
// used.
func (g *Gate) ObserveLateness(fn func(late time.Duration)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.lateness = fn
}

// NewGate returns a gate that keeps interval between request starts. A nil
// now uses time.Now; now must return times with a monotonic reading.
//
// A new gate counts its own creation as a start: the previous process (before
// a restart or a crash) may have started a request just before it ended, and
// the upstream counts that one too. So the first request waits one interval.
func NewGate(interval time.Duration, now func() time.Time) *Gate {
	if now == nil {
		now = time.Now
	}
	return &Gate{interval: interval, now: now, slot: make(chan struct{}, 1), last: now()}
}

// Interval returns the minimum gap between request starts.
func (g *Gate) Interval() time.Duration { return g.interval }

// Acquire waits until no other request is in flight and the interval since
// the previous start has passed, then takes now as the start of a request
// (in memory). The caller must call release exactly once, when the
// request's response has been read or it has failed. Acquire returns ctx's
// error if ctx ends first.
//
// With a record (Attach), the start is also recorded durably before
// Acquire returns, as the moment the wait ends: the write is made during
// the last recordLead of the wait (at once for a shorter wait), so its
// round trip overlaps the wait instead of delaying the request; the request
// goes when the wait is over and the write has returned. A start that moves
// later after it was recorded (a Hold, or another record attached) is
// recorded again. If a write fails, so does Acquire. If ctx ends after the
// start was recorded, the request is recorded as ended (best effort).
func (g *Gate) Acquire(ctx context.Context) (release func(), err error) {
	select {
	case g.slot <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	var due time.Time
	var rec Record
	// recorded is the start written to wrote, the record of Attach call
	// recordedIn (recordedIn 0: none yet).
	var recorded time.Time
	var recordedIn uint64
	var wrote Record
	for {
		g.mu.Lock()
		now := g.now()
		d := Delay(now, g.last, g.hold, g.interval)
		rec = g.rec
		attached := g.attached
		record := rec != nil && (attached != recordedIn || g.earliest().After(recorded))
		if record && d <= recordLead {
			// Record the start as the end of the wait: the request goes
			// then, or as soon as the write is done if it takes longer.
			g.mu.Unlock()
			due = now.Add(d)
			if err := rec.Start(ctx, d); err != nil {
				<-g.slot
				return nil, err
			}
			recorded, recordedIn, wrote = due, attached, rec
			if ctx.Err() != nil {
				g.abandon(ctx, wrote)
				return nil, ctx.Err()
			}
			continue
		}
		if d == 0 {
			if due.IsZero() {
				due = now
			}
			g.last, g.planned, g.seen = now, due, false
			g.mu.Unlock()
			break
		}
		due = now.Add(d)
		if record {
			d -= recordLead // wake to record the start, then wait the rest
		}
		g.mu.Unlock()
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			if wrote != nil {
				g.abandon(ctx, wrote)
			} else {
				<-g.slot
			}
			return nil, ctx.Err()
		}
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			if rec != nil {
				// How late the request went after the start recorded for
				// it: the write ran over the wait, the timer fired late,
				// or Started moved the start to the real send.
				g.mu.Lock()
				late := max(g.last.Sub(recorded), 0)
				g.mu.Unlock()
				ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
				// A lost end only makes the next leader wait one interval
				// more.
				_ = rec.End(ctx, late)
				cancel()
			}
			<-g.slot
		})
	}, nil
}

// abandon gives up a request whose start was recorded in rec but which
// will not be sent (its ctx ended): it records the request as ended, or the
// next leader would wait an interval more for it, and frees the slot. A
// lost lead's write is refused, which changes nothing.
func (g *Gate) abandon(ctx context.Context, rec Record) {
	ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	_ = rec.End(ectx, 0)
	cancel()
	<-g.slot
}

// Started records that the request in flight was really sent at at (its
// headers written, after any connection set-up), if that is later than its
// recorded start: the next request is spaced from the later moment.
func (g *Gate) Started(at time.Time) {
	g.mu.Lock()
	if at.After(g.last) {
		g.last = at
	}
	report, late := g.lateness, at.Sub(g.planned)
	if g.seen || g.planned.IsZero() {
		report = nil // a request re-sent on a fresh connection is timed once
	}
	g.seen = true
	g.mu.Unlock()
	if report != nil {
		report(max(late, 0))
	}
}

// Hold keeps every request from starting before until, as an upstream's
// Retry-After asks. An earlier until than the current hold is ignored. With
// a record (Attach), the hold is recorded there too before Hold returns.
func (g *Gate) Hold(until time.Time) {
	g.mu.Lock()
	now := g.now()
	if until.After(g.hold) {
		g.hold = until
	}
	rec := g.rec
	g.mu.Unlock()
	if rec != nil && until.After(now) {
		ctx, cancel := context.WithTimeout(context.Background(), recordTimeout)
		// A lost hold is the upstream's to enforce again: its next 429
		// says so.
		_ = rec.Hold(ctx, until.Sub(now))
		cancel()
	}
}

// earliest returns the earliest start the previous start and the hold
// allow, whatever the time now (zero if nothing holds a start back). The
// caller holds g.mu.
func (g *Gate) earliest() time.Time {
	var t time.Time
	if !g.last.IsZero() {
		t = g.last.Add(g.interval)
	}
	if g.hold.After(t) {
		t = g.hold
	}
	return t
}

// NextStart returns the earliest time the next request could start, ignoring
// any request now in flight: the value to base a Retry-After or an estimate on.
func (g *Gate) NextStart() time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	return now.Add(Delay(now, g.last, g.hold, g.interval))
}
