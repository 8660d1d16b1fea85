package pgstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/groupgate/groupgate/dispatch"
	"github.com/groupgate/groupgate/pacing"
)

// Leading: dispatch.Leases on PostgreSQL, so that each tenant has one
// dispatcher across every replica sharing the database.
//
// Each replica heartbeats (Leading.Run) and computes, from the live
// replicas, which one is assigned each tenant (Assign). A free lease
// (never taken, released, or lapsed by the database's clock) is taken at
// once by its assigned replica, and by any replica once it has seen it
// free for Grace, so a dead or confused assignee never blocks a tenant.
// A leader whose tenant is assigned to another live replica (one that
// joined) gives it up: its dispatcher stops, the lead is released, and the
// assignee takes it. A released lease is announced on ChannelLeases, so a
// replica waiting for it (see Listen) tries at once instead of at its next
// poll. Leases, not the assignment, decide who leads: while replicas
// disagree about who is alive a tenant may wait for its lease, but never
// has two leaders, and every write of a deposed one is fenced.

// ChannelLeases carries the tenant whose lease was released.
const ChannelLeases = "groupgate.leases"

// LeadingConfig configures Leading.
type LeadingConfig struct {
	// Replica names this replica, unique among those sharing the database
	// (a pod's name, say). Required.
	Replica string
	// TTL is the time to live of a lease and of a heartbeat; default 15 s.
	// A dead leader's tenants are taken over at most TTL + Grace + Poll
	// (and a moment) after it died.
	TTL time.Duration
	// Grace is how long a lease must have been free (by the database's
	// clock: since its release or lapse) before a replica takes a tenant
	// assigned to another; default 1 s. The assignee, woken by the
	// release's NOTIFY, takes it well within.
	Grace time.Duration
	// Poll is how often a replica reads the live replicas and every lease
	// (one query each, whatever the number of tenants) to try the leases
	// it waits for again, and to check that the tenants it leads are
	// still assigned to it; default 500 ms.
	Poll time.Duration
	// Logger, if set, is told of failed heartbeats.
	Logger *slog.Logger
}

// Leading implements dispatch.Leases over the store's leases. Create with
// NewLeading and Run it (its heartbeat) while the replica serves.
type Leading struct {
	s   *Store
	cfg LeadingConfig
	log *slog.Logger

	departed   chan struct{}
	departOnce sync.Once
	readMu     sync.Mutex
	// beaten is set once a heartbeat was recorded: before, Lead records
	// one itself, so that it counts itself among the live replicas.
	beaten atomic.Bool

	mu       sync.Mutex
	replicas []string
	// beats holds each live replica's heartbeat expiry as last read.
	beats map[string]time.Time
	// leases holds every tenant's lease as last read.
	leases map[string]leaseView
	readAt time.Time
	wakes  map[string]chan struct{}
}

var _ dispatch.Leases = (*Leading)(nil)

// NewLeading returns the leases of replica cfg.Replica.
func (s *Store) NewLeading(cfg LeadingConfig) (*Leading, error) {
	if cfg.Replica == "" {
		return nil, errors.New("leading: a replica needs a name")
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 15 * time.Second
	}
	if cfg.Grace <= 0 {
		cfg.Grace = time.Second
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 500 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Leading{s: s, cfg: cfg, log: cfg.Logger, wakes: map[string]chan struct{}{}, departed: make(chan struct{})}, nil
}

// Run heartbeats every third of the TTL until ctx ends or Depart is
// called, then departs (if it has not) and returns ctx's error (nil after
// Depart).
func (l *Leading) Run(ctx context.Context) error {
	t := time.NewTicker(l.cfg.TTL / 3)
	defer t.Stop()
	for {
		if err := l.beat(ctx); err != nil && ctx.Err() == nil {
			l.log.Error("replica heartbeat", "err", err)
		}
		// Forgets replicas long gone.
		_, _ = l.s.Replicas(ctx)
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
			if err := l.Depart(dctx); err != nil {
				l.log.Warn("depart", "err", err)
			}
			cancel()
			return ctx.Err()
		case <-l.departed:
			return nil
		case <-t.C:
		}
	}
}

// beat records this replica's heartbeat, unless it departs.
func (l *Leading) beat(ctx context.Context) error {
	if l.departing() {
		return nil
	}
	if err := l.s.Heartbeat(ctx, l.cfg.Replica, l.cfg.TTL); err != nil {
		return err
	}
	l.beaten.Store(true)
	if l.departing() {
		// Depart ran meanwhile: its removal may have come first.
		return l.s.Depart(ctx, l.cfg.Replica)
	}
	return nil
}

// Depart stops the heartbeat and removes it at once, so that the other
// replicas count this one gone: the leases its dispatchers release after
// it are then taken at once by their new assignees. A replica shutting
// down calls it before it stops its dispatchers.
func (l *Leading) Depart(ctx context.Context) error {
	l.departOnce.Do(func() { close(l.departed) })
	return l.s.Depart(ctx, l.cfg.Replica)
}

// releaseTimeout bounds a release or a departure made on the way out.
const releaseTimeout = 5 * time.Second

// Listen makes a released lease wake the replicas waiting for it: ln must
// listen on ChannelLeases. Without it they try every Poll.
func (l *Leading) Listen(ln *Listener) (unsubscribe func(), err error) {
	return ln.Subscribe(ChannelLeases, func(n Notification) {
		if n.Resync {
			l.wakeAll()
			return
		}
		l.wake(n.Payload)
	})
}

// wakeChan returns tenant's wake-up channel.
func (l *Leading) wakeChan(tenant string) chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	ch, ok := l.wakes[tenant]
	if !ok {
		ch = make(chan struct{}, 1)
		l.wakes[tenant] = ch
	}
	return ch
}

// wake makes tenant's waiting Lead try at once, on a fresh reading of the
// live replicas (a replica that released it may have departed since).
func (l *Leading) wake(tenant string) {
	l.mu.Lock()
	// The release's NOTIFY: read again.
	l.readAt = time.Time{}
	l.mu.Unlock()
	select {
	case l.wakeChan(tenant) <- struct{}{}:
	default:
	}
}

func (l *Leading) wakeAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.readAt = time.Time{}
	for _, ch := range l.wakes {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// leaseView is a tenant's lease as read.
type leaseView struct {
	live bool
	// freeFor is how long it had been free (released or lapsed) when
	// read; zero for a live one.
	freeFor time.Duration
}

// assignee returns the live replica assigned tenant and that replica's
// heartbeat expiry, and tenant's lease (ok false if it has none), as read
// at most Poll ago (see read).
func (l *Leading) assignee(ctx context.Context, tenant string) (assigned string, beat time.Time, lease leaseView, ok bool, err error) {
	replicas, beats, leases, err := l.snapshot(ctx)
	if err != nil {
		return "", time.Time{}, leaseView{}, false, err
	}
	a := Assign([]string{tenant}, replicas)[tenant]
	lease, ok = leases[tenant]
	return a, beats[a], lease, ok, nil
}

// snapshot returns the live replicas with their heartbeat expiries, and
// every lease, reading them again when the last reading is older than
// Poll: one reading for every tenant this replica waits for or leads.
func (l *Leading) snapshot(ctx context.Context) ([]string, map[string]time.Time, map[string]leaseView, error) {
	if r, b, v, fresh := l.cached(); fresh {
		return r, b, v, nil
	}
	l.readMu.Lock()
	defer l.readMu.Unlock()
	if r, b, v, fresh := l.cached(); fresh {
		return r, b, v, nil
	}
	replicas, beats, leases, err := l.read(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	l.mu.Lock()
	l.replicas, l.beats, l.leases, l.readAt = replicas, beats, leases, time.Now()
	l.mu.Unlock()
	return replicas, beats, leases, nil
}

// read reads the live replicas (by name) with their heartbeat expiries,
// and every tenant's lease.
func (l *Leading) read(ctx context.Context) ([]string, map[string]time.Time, map[string]leaseView, error) {
	rows, err := l.s.pool.Query(ctx, "SELECT name, expires FROM replicas WHERE expires > clock_timestamp() ORDER BY name")
	if err != nil {
		return nil, nil, nil, fmt.Errorf("list replicas: %w", err)
	}
	var names []string
	beats := map[string]time.Time{}
	var name string
	var expires time.Time
	_, err = pgx.ForEachRow(rows, []any{&name, &expires}, func() error {
		names = append(names, name)
		beats[name] = expires
		return nil
	})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("list replicas: %w", err)
	}
	rows, err = l.s.pool.Query(ctx, `SELECT tenant, holder <> '' AND expires > clock_timestamp(),
		(extract(epoch FROM greatest(clock_timestamp() - expires, interval '0')) * 1000000)::bigint
		FROM leases`)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("list leases: %w", err)
	}
	leases := map[string]leaseView{}
	var tenant string
	var live bool
	var freeUS int64
	_, err = pgx.ForEachRow(rows, []any{&tenant, &live, &freeUS}, func() error {
		v := leaseView{live: live}
		if !live {
			v.freeFor = time.Duration(freeUS) * time.Microsecond
		}
		leases[tenant] = v
		return nil
	})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("list leases: %w", err)
	}
	return names, beats, leases, nil
}

// cached returns the last reading, and whether it is younger than Poll.
func (l *Leading) cached() ([]string, map[string]time.Time, map[string]leaseView, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.replicas, l.beats, l.leases, !l.readAt.IsZero() && time.Since(l.readAt) < l.cfg.Poll
}

// departing reports whether Depart was called.
func (l *Leading) departing() bool {
	select {
	case <-l.departed:
		return true
	default:
		return false
	}
}

// Lead implements dispatch.Leases: it waits until this replica holds
// tenant's lease (see Leading), and keeps it renewed (Leadership).
func (l *Leading) Lead(ctx context.Context, tenant string) (dispatch.Lead, error) {
	if !l.beaten.Load() && !l.departing() {
		if err := l.beat(ctx); err != nil {
			return nil, err
		}
		l.mu.Lock()
		l.readAt = time.Time{} // read again, with this replica
		l.mu.Unlock()
	}
	wake := l.wakeChan(tenant)
	var freeSince time.Time
	for {
		lease, ok, err := l.try(ctx, tenant, &freeSince)
		if err != nil {
			return nil, err
		}
		if ok {
			return l.newLead(ctx, lease), nil
		}
		t := time.NewTimer(l.cfg.Poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-wake:
			t.Stop()
		case <-t.C:
		}
	}
}

// try takes tenant's lease if it is this replica's turn: the tenant is
// assigned here (AcquireLease then takes the lease if it is free), or its
// lease has been free for Grace (since its release or lapse, by the
// database's clock; since try first saw it, for a tenant never led, kept
// in *freeSince); never once the replica departs.
func (l *Leading) try(ctx context.Context, tenant string, freeSince *time.Time) (Lease, bool, error) {
	if l.departing() {
		return Lease{}, false, nil
	}
	assigned, _, lease, known, err := l.assignee(ctx, tenant)
	if err != nil {
		return Lease{}, false, err
	}
	if assigned != l.cfg.Replica {
		if lease.live {
			*freeSince = time.Time{}
			return Lease{}, false, nil
		}
		if freeSince.IsZero() {
			*freeSince = time.Now()
			if known {
				*freeSince = freeSince.Add(-lease.freeFor)
			}
		}
		if time.Since(*freeSince) < l.cfg.Grace {
			return Lease{}, false, nil
		}
	}
	return l.s.AcquireLease(ctx, tenant, l.cfg.Replica, l.cfg.TTL)
}

// errHandedOver ends a lead whose tenant is now assigned to another live
// replica.
var errHandedOver = errors.New("tenant assigned to another replica")

// lead is a held lease as a dispatch.Lead.
type lead struct {
	l      *Leading
	ld     *Leadership
	tenant string
	epoch  int64
	ctx    context.Context
	cancel context.CancelCauseFunc
	// beats are the replicas' heartbeat expiries when the lead began.
	beats map[string]time.Time
}

var _ dispatch.RecordedLead = (*lead)(nil)

func (l *Leading) newLead(ctx context.Context, lease Lease) *lead {
	ld := l.s.Lead(context.WithoutCancel(ctx), lease, l.cfg.TTL)
	lctx, cancel := context.WithCancelCause(ld.Context())
	_, beats, _, _ := l.cached()
	ld2 := &lead{l: l, ld: ld, tenant: lease.Tenant, epoch: lease.Epoch, ctx: lctx, cancel: cancel, beats: beats}
	go ld2.watch()
	return ld2
}

// watch ends the lead, without releasing it, once the tenant is assigned
// to another live replica: the dispatcher stops, and Release hands the
// lease over. A departing replica's leads are left to its shutdown, which
// lets a call in flight finish within its grace and then releases them.
func (d *lead) watch() {
	t := time.NewTicker(d.l.cfg.Poll)
	defer t.Stop()
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-t.C:
		}
		if d.l.departing() {
			return
		}
		a, beat, _, _, err := d.l.assignee(d.ctx, d.tenant)
		if err != nil || a == "" || a == d.l.cfg.Replica {
			continue
		}
		// Only to a replica seen alive since this lead began: one that
		// died (its heartbeat not expired yet) is how this replica came
		// to lead, and would never take the tenant.
		if was, ok := d.beats[a]; !ok || beat.After(was) {
			d.cancel(fmt.Errorf("lead of %s: %w (%s)", d.tenant, errHandedOver, a))
			return
		}
	}
}

// Context implements dispatch.Lead: it ends before the lease could lapse
// (see Leadership), or when the tenant is assigned to another replica.
func (d *lead) Context() context.Context { return d.ctx }

// Epoch implements dispatch.Lead.
func (d *lead) Epoch() uint64 { return uint64(d.epoch) }

// Release implements dispatch.Lead: the lease is released and the release
// announced on ChannelLeases.
func (d *lead) Release(ctx context.Context) error {
	d.cancel(fmt.Errorf("lead of %s released: %w", d.tenant, ErrLeaseLost))
	if err := d.ld.Release(ctx); err != nil {
		return err
	}
	if err := d.l.s.Notify(ctx, ChannelLeases, d.tenant); err != nil {
		return fmt.Errorf("announce the release of %s: %w", d.tenant, err)
	}
	return nil
}

// PacingRecord implements dispatch.RecordedLead: the tenant's pacing
// record (RecordStart, RecordEnd, RecordHold, NextAllowedStart), fenced by
// this lead's epoch.
func (d *lead) PacingRecord() pacing.Record {
	return &pacingRecord{s: d.l.s, tenant: d.tenant, epoch: d.epoch}
}

// pacingRecord is pacing.Record over the pacing table.
type pacingRecord struct {
	s      *Store
	tenant string
	epoch  int64
}

func (r *pacingRecord) Start(ctx context.Context, in time.Duration) error {
	_, err := r.s.RecordStart(ctx, r.tenant, r.epoch, in)
	return err
}

func (r *pacingRecord) End(ctx context.Context, late time.Duration) error {
	return r.s.RecordEnd(ctx, r.tenant, r.epoch, late)
}

func (r *pacingRecord) Hold(ctx context.Context, d time.Duration) error {
	_, err := r.s.RecordHold(ctx, r.tenant, r.epoch, d)
	return err
}

func (r *pacingRecord) Wait(ctx context.Context, interval time.Duration) (time.Duration, error) {
	p, err := r.s.NextAllowedStart(ctx, r.tenant, interval, 0)
	return p.Wait, err
}
