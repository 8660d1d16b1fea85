package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/groupgate/groupgate/techpass/techpasssim"
)

// rateTenant is the tenant whose upstream rate is measured. Its projects
// take turns, as a real tenant's would.
const rateTenant = "RATE"

var rateProjects = []string{"R1", "R2", "R3", "R4"}

// RateResult is the upstream pacing measured under a standing backlog.
type RateResult struct {
	IntervalMs  float64 `json:"intervalMs"`
	PaceGuardMs float64 `json:"paceGuardMs"`
	// WindowS is the wall-clock length of the measurement window.
	WindowS float64 `json:"windowS"`
	// Requests is how many upstream requests started after the window's
	// first start, up to and including its last.
	Requests int `json:"requests"`
	// SpanS is the time between the window's first and last starts, as
	// the simulator recorded them.
	SpanS float64 `json:"spanS"`
	// Rate is Requests/SpanS: the achieved start-to-start rate.
	Rate float64 `json:"ratePerS"`
	// Limit is 1/interval, the most the upstream allows.
	Limit     float64 `json:"limitPerS"`
	RateRatio float64 `json:"rateRatio"`
	// MinGapMs is the simulator's smallest gap between two arrivals of the
	// tenant over the whole run.
	MinGapMs float64 `json:"minGapMs"`
	// Gap* describe the gaps inside the window, timed at the simulator's
	// listener.
	GapP50Ms          float64 `json:"gapP50Ms"`
	GapMeanMs         float64 `json:"gapMeanMs"`
	GapMaxMs          float64 `json:"gapMaxMs"`
	GapsBelowInterval int     `json:"gapsBelowInterval"`
	// Slack* are gap - interval at the listener: the part of the pace
	// guard left after jitter (the least, the 0.1th and the 1st
	// percentiles); negative is a gap shorter than the interval.
	SlackMinMs  float64 `json:"slackMinMs"`
	SlackP001Ms float64 `json:"slackP001Ms"`
	SlackP01Ms  float64 `json:"slackP01Ms"`
	// Lateness is the server's own measure of how late its requests
	// started after their planned start, over the whole run.
	Lateness    *Lateness `json:"lateness,omitempty"`
	MaxInFlight int       `json:"maxInFlight"`
	// Violations are the simulator's 429s for breaking the interval or
	// overlapping, for the tenant over the whole run.
	Violations int `json:"violations"`
	// Backlog* are the least and most operations waiting (queued and not
	// yet sent upstream) seen during the window.
	BacklogMin int `json:"backlogMin"`
	BacklogMax int `json:"backlogMax"`
	// UpstreamConns is how many connections the simulator accepted during
	// the window: a request that has to open one reaches the upstream later
	// after its start than one that reuses a connection.
	UpstreamConns int `json:"upstreamConns"`
	// Enqueued is how many creates the feeder queued in all.
	Enqueued int     `json:"enqueued"`
	Checks   []Check `json:"checks"`
}

// runRate keeps a standing backlog in the rate tenant and measures, over
// o.Duration, the rate at which the gateway starts upstream requests.
func runRate(ctx context.Context, h *harness, o Options, progress func(string, ...any)) (*RateResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	f := &feeder{h: h, backlog: o.Backlog}
	if err := f.fill(ctx); err != nil {
		return nil, err
	}
	feedErr := make(chan error, 1)
	go func() { feedErr <- f.run(ctx, max(o.Interval/4, 5*time.Millisecond)) }()

	// Start the window on an upstream start, so the span runs from start
	// to start.
	first, err := waitStart(ctx, h, 0, 5*o.Interval+10*time.Second)
	if err != nil {
		return nil, fmt.Errorf("rate: no upstream request: %w", err)
	}
	s0, err := waitStart(ctx, h, first.Requests, 3*o.Interval+5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("rate: %w", err)
	}
	f.resetBacklogRange()
	conns0 := h.simConns.Load()
	windowStart := time.Now()
	progress("rate: window of %v opened at %d upstream requests", o.Duration, s0.Requests)
	tick := time.NewTicker(10 * time.Second)
	end := time.NewTimer(o.Duration)
wait:
	for {
		select {
		case <-ctx.Done():
			tick.Stop()
			return nil, ctx.Err()
		case err := <-feedErr:
			tick.Stop()
			return nil, fmt.Errorf("rate: feeder: %w", err)
		case <-tick.C:
			st := h.stats(rateTenant)
			progress("rate: %4.0fs: %d requests, %d violations", time.Since(windowStart).Seconds(), st.Requests-s0.Requests, st.Violations)
		case <-end.C:
			break wait
		}
	}
	tick.Stop()
	cur := h.stats(rateTenant)
	s1, err := waitStart(ctx, h, cur.Requests, 3*o.Interval+5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("rate: %w", err)
	}
	window := time.Since(windowStart)
	conns := int(h.simConns.Load() - conns0)
	cancel()
	<-feedErr
	bmin, bmax := f.backlogRange()

	r := &RateResult{
		IntervalMs:    ms(o.Interval),
		PaceGuardMs:   ms(o.PaceGuard),
		WindowS:       window.Seconds(),
		Requests:      s1.Requests - s0.Requests,
		SpanS:         s1.LastStart.Sub(*s0.LastStart).Seconds(),
		Limit:         1 / o.Interval.Seconds(),
		MaxInFlight:   s1.MaxInFlight,
		Violations:    s1.Violations,
		BacklogMin:    bmin,
		BacklogMax:    bmax,
		Enqueued:      f.enqueued(),
		UpstreamConns: conns,
	}
	if r.SpanS > 0 {
		r.Rate = float64(r.Requests) / r.SpanS
	}
	r.RateRatio = r.Rate / r.Limit
	if g, ok := s1.MinGap(); ok {
		r.MinGapMs = ms(g)
	}
	// Arrival i (0-based) at the listener is the simulator's request i+1.
	ts := h.arrivals.slice(rateTenant, s0.Requests-1, s1.Requests)
	gaps := make([]time.Duration, 0, len(ts))
	for i := 1; i < len(ts); i++ {
		g := ts[i].Sub(ts[i-1])
		gaps = append(gaps, g)
		if g < o.Interval {
			r.GapsBelowInterval++
		}
	}
	r.SlackMinMs, r.SlackP001Ms, r.SlackP01Ms = slack(gaps, o.Interval)
	d := summarize(gaps)
	r.GapP50Ms, r.GapMeanMs, r.GapMaxMs = ms(d.p50), ms(d.mean), ms(d.max)
	if r.Lateness, err = h.lateness(context.WithoutCancel(ctx)); err != nil {
		return nil, fmt.Errorf("rate: %w", err)
	}
	r.Checks = []Check{
		check(r.RateRatio >= 0.995, "rate >= 0.995 of the limit (%.4f)", r.RateRatio),
		check(r.MinGapMs >= r.IntervalMs, "every gap >= the interval (min %.3f ms)", r.MinGapMs),
		check(r.Violations == 0, "0 violations (%d)", r.Violations),
		check(r.MaxInFlight <= 1, "at most 1 in flight (%d)", r.MaxInFlight),
		check(r.BacklogMin > 0, "backlog stood throughout (min %d waiting)", r.BacklogMin),
	}
	// Leave no work behind for the next phase.
	if err := f.cancelRest(context.Background()); err != nil {
		return nil, fmt.Errorf("rate: cancel the rest of the backlog: %w", err)
	}
	return r, nil
}

// waitStart polls the simulator until the rate tenant has more than after
// requests and returns the statistics then: taken right after a start, so
// LastStart is that start.
func waitStart(ctx context.Context, h *harness, after int, within time.Duration) (techpasssim.NamespaceStats, error) {
	deadline := time.Now().Add(within)
	for {
		st := h.stats(rateTenant)
		if st.Requests > after && st.LastStart != nil {
			return st, nil
		}
		if time.Now().After(deadline) {
			return techpasssim.NamespaceStats{}, fmt.Errorf("no upstream start after request %d within %v", after, within)
		}
		select {
		case <-ctx.Done():
			return techpasssim.NamespaceStats{}, ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

// feeder keeps at least backlog operations of the rate tenant waiting, so
// the dispatcher is never idle: it tops the queue up whenever the upstream
// has taken from it.
type feeder struct {
	h       *harness
	backlog int

	mu         sync.Mutex
	n          int
	ids        map[string][]string // by who
	bmin, bmax int
}

// waiting is how many queued operations have not reached the upstream
// yet: every create reaches it exactly once (the simulator injects no
// faults here).
func (f *feeder) waiting() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n - f.h.stats(rateTenant).Requests
}

func (f *feeder) fill(ctx context.Context) error {
	for f.waiting() < f.backlog {
		if err := f.add(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (f *feeder) add(ctx context.Context) error {
	f.mu.Lock()
	i := f.n
	f.mu.Unlock()
	who := rateTenant + "/" + rateProjects[i%len(rateProjects)]
	op, err := f.h.create(ctx, who, fmt.Sprintf("rate-%06d", i))
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	if f.ids == nil {
		f.ids = map[string][]string{}
	}
	f.ids[who] = append(f.ids[who], op.Id)
	return nil
}

func (f *feeder) run(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		w := f.waiting()
		f.mu.Lock()
		f.bmin, f.bmax = min(f.bmin, w), max(f.bmax, w)
		f.mu.Unlock()
		if err := f.fill(ctx); err != nil && ctx.Err() == nil {
			return err
		}
	}
}

func (f *feeder) resetBacklogRange() {
	w := f.waiting()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bmin, f.bmax = w, w
}

func (f *feeder) backlogRange() (int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.bmin, f.bmax
}

func (f *feeder) enqueued() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

func (f *feeder) cancelRest(ctx context.Context) error {
	f.mu.Lock()
	ids := f.ids
	f.mu.Unlock()
	for who, list := range ids {
		if err := f.h.cancelQueued(ctx, who, list); err != nil {
			return err
		}
	}
	return nil
}
