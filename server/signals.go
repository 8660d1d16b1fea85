package server

import (
	"context"
	"reflect"
	"time"

	"github.com/groupgate/groupgate/pgstore"
)

// Signals between replicas, on PostgreSQL (pgstore's Listener: LISTEN/NOTIFY
// with a polling fallback). On bbolt there is one process and none of this
// runs.
//
//   - groupgate.queue (sent by the store when an enqueue commits): wakes the
//     tenant's dispatcher here, so an operation accepted by another replica
//     is started by whichever replica runs the tenant's dispatcher.
//   - groupgate.settled (sent by the replica whose dispatcher settled an
//     operation, OnSettled): answers a Prefer: wait held here.
//   - groupgate.mirror (sent by runtimes.Request): a mirror pass requested
//     through any replica is requested of the reconciler here too.
//   - groupgate.leases (sent when a lease is released): wakes the replica
//     waiting for it (pgstore.Leading.Listen).
//   - groupgate.tenants (sent by every committed change of tenants,
//     projects and keys): rebuilds the runtimes of tenants whose record
//     changed (syncChanged), and drops the store's cached tenants
//     generation (pgstore.FollowTenants), so the authenticator reloads keys,
//     tenants and projects: a key revoked through one replica is refused by
//     the others as soon as the signal arrives, and at most
//     postgres.auth_cache_ttl (1 s by default) after the revocation commits
//     if the signal is lost.
//
// A notification is a hint; a Resync (after the listener (re)connects, and
// every signalPoll) re-reads: the tenants are compared again and every
// dispatcher is woken. A missed settled signal leaves a held Prefer: wait
// to end at its deadline with the operation's state then.

// signalPoll is the polling fallback's period: the bound on the delay of a
// missed signal (a runtime rebuilt after a tenant's change, a dispatcher
// woken for an operation enqueued elsewhere).
const signalPoll = 2 * time.Second

// listen subscribes to the other replicas' signals when the store is
// PostgreSQL; Run runs the listener.
func (s *Server) listen() error {
	if s.store.pg == nil {
		return nil
	}
	l, err := s.store.pg.NewListener(pgstore.ListenerConfig{
		Channels:     []string{pgstore.ChannelQueue, pgstore.ChannelSettled, pgstore.ChannelMirror, pgstore.ChannelTenants, pgstore.ChannelLeases},
		PollInterval: signalPoll,
		PollOnly:     s.cfg.Postgres.PollOnly,
		Logger:       s.logger,
	})
	if err != nil {
		return err
	}
	subs := []struct {
		channel string
		fn      func(pgstore.Notification)
	}{
		{pgstore.ChannelQueue, func(n pgstore.Notification) {
			if n.Resync {
				for _, rt := range s.runtimes.all() {
					s.queue.Wake(rt.name())
				}
				return
			}
			s.queue.Wake(n.Payload)
		}},
		{pgstore.ChannelSettled, func(n pgstore.Notification) {
			if !n.Resync {
				s.queue.Settled().Notify(n.Payload)
			}
		}},
		{pgstore.ChannelMirror, func(n pgstore.Notification) {
			if !n.Resync {
				s.runtimes.requestHere(n.Payload)
			}
		}},
		{pgstore.ChannelTenants, func(pgstore.Notification) { s.tenantsChanged() }},
	}
	for _, sub := range subs {
		if _, err := l.Subscribe(sub.channel, sub.fn); err != nil {
			return err
		}
	}
	if _, err := s.store.pg.FollowTenants(l); err != nil {
		return err
	}
	if s.leading != nil {
		if _, err := s.leading.Listen(l); err != nil { // a released lease wakes its next holder
			return err
		}
	}
	s.signals = l
	s.tenantSync = make(chan struct{}, 1)
	s.runtimes.signal = func(tenant string) { s.signal(pgstore.ChannelMirror, tenant) }
	return nil
}

// signal sends payload on channel to every replica (this one included),
// when the store is PostgreSQL. A failure is logged: the polling fallback
// bounds what it delays.
func (s *Server) signal(channel, payload string) {
	if s.store.pg == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.store.pg.Notify(ctx, channel, payload); err != nil {
		s.logger.Warn("signal the other replicas", "channel", channel, "err", err)
	}
}

// tenantsChanged asks syncChanged to run (once, however many signals
// come meanwhile). It runs on the listener's goroutine and never blocks.
func (s *Server) tenantsChanged() {
	select {
	case s.tenantSync <- struct{}{}:
	default:
	}
}

// syncChanges runs syncChanged for each request of tenantsChanged until
// ctx ends.
func (s *Server) syncChanges(ctx context.Context) {
	if s.tenantSync == nil {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.tenantSync:
			if err := s.syncChanged(ctx); err != nil && ctx.Err() == nil {
				s.logger.Warn("follow tenant changes made through another replica", "err", err)
			}
		}
	}
}

// syncChanged rebuilds the runtime of every tenant whose stored record no
// longer matches its runtime's (changed, enabled or disabled through
// another replica) and drops the runtimes of tenants no longer stored.
// Unchanged tenants keep their runtimes (and dispatchers) untouched.
func (s *Server) syncChanged(ctx context.Context) error {
	ts, err := s.store.Tenants(ctx)
	if err != nil {
		return err
	}
	stored := map[string]bool{}
	for _, t := range ts {
		stored[t.Name] = true
		rt := s.runtimes.get(t.Name)
		switch {
		case rt == nil && t.Disabled:
			continue
		case rt != nil && !t.Disabled && reflect.DeepEqual(rt.settings.Tenant, t):
			continue
		}
		if err := s.syncTenant(ctx, t.Name); err != nil {
			s.logger.Warn("rebuild a tenant's runtime after a change through another replica", "tenant", t.Name, "err", err)
		}
	}
	for _, rt := range s.runtimes.all() {
		if !stored[rt.name()] {
			s.runtimes.remove(rt.name())
		}
	}
	return nil
}
