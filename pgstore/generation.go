package pgstore

import (
	"context"
	"sync"
	"time"
)

// generationCache keeps the tenants generation read from the database for
// up to a time to live, so that authenticating a request does not cost a
// round trip to the database.
//
// The bound: a value is served only while less than ttl has passed since
// the read that produced it began, so a change committed at time T
// (through any replica) is seen by every Generation call that begins
// after T + ttl, whether or not its signal arrives. In practice it is
// seen sooner: the change's notification on ChannelTenants (FollowTenants)
// and this replica's own writes of tenants, projects and keys (tenantsTx)
// drop the value at once, and a read that was under way when the value
// was dropped is not kept (it may have begun before the change).
//
// A ttl of 0 or less reads the database on every call.
type generationCache struct {
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	value   uint64
	readAt  time.Time // when the read that produced value began
	valid   bool
	dropped uint64 // how many times the value was dropped
	// seen is the largest generation any read returned: what get answers
	// at least, so that no caller sees the generation go down (reads
	// overlap and finish in any order; a larger value is a later state,
	// never a staler one).
	seen uint64
}

// get returns the cached generation, or reads it with read.
func (c *generationCache) get(ctx context.Context, read func(context.Context) (uint64, error)) (uint64, error) {
	if c.ttl <= 0 {
		return read(ctx)
	}
	c.mu.Lock()
	now := c.now()
	if c.valid && now.Sub(c.readAt) < c.ttl {
		v := max(c.value, c.seen)
		c.mu.Unlock()
		return v, nil
	}
	dropped := c.dropped
	c.mu.Unlock()
	v, err := read(ctx)
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen = max(c.seen, v)
	switch {
	case c.dropped != dropped:
		// The read may have begun before a change: keep nothing.
	case !c.valid:
		c.value, c.readAt, c.valid = v, now, true
	default:
		// Two reads overlapped: keep the larger value and the later start
		// (the value reflects a state no older than that start).
		c.value, c.readAt = max(c.value, v), maxTime(c.readAt, now)
	}
	return c.seen, nil
}

// maxTime returns the later of a and b.
func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// invalidate drops the cached value: the next get reads the database.
func (c *generationCache) invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.valid = false
	c.dropped++
}

// FollowTenants drops the cached tenants generation (see
// Config.GenerationTTL) on every notification on ChannelTenants, and on
// every Resync, so that a change made through another replica applies here
// as soon as its signal arrives. l must listen on ChannelTenants.
func (s *Store) FollowTenants(l *Listener) (unsubscribe func(), err error) {
	return l.Subscribe(ChannelTenants, func(Notification) { s.generation.invalidate() })
}
