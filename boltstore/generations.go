package boltstore

import (
	"sync"
	"sync/atomic"
)

// generations lets readers cache what they derive from the store without a
// bbolt transaction per request: an in-process counter for tenants,
// projects and keys, and a memo of each project's persisted groups version.
// Both change only after a commit, so a reader that checks them never keeps
// data older than what is committed.
type generations struct {
	tenants atomic.Uint64

	mu       sync.Mutex
	epoch    uint64
	versions map[string]uint64
}

// tenantsChanged counts a committed change to tenants, projects or keys.
func (g *generations) tenantsChanged() { g.tenants.Add(1) }

// cachedVersion returns a project's memoized groups version, and the epoch
// to pass to remember when it is not memoized.
func (g *generations) cachedVersion(key string) (v uint64, ok bool, epoch uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	v, ok = g.versions[key]
	return v, ok, g.epoch
}

// remember memoizes a version read from the store, unless an invalidation
// happened since epoch (the value might then be stale).
func (g *generations) remember(key string, v, epoch uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.epoch != epoch {
		return
	}
	if g.versions == nil {
		g.versions = map[string]uint64{}
	}
	g.versions[key] = v
}

// forget drops a project's memo after a commit that may have changed it.
func (g *generations) forget(keys ...string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.epoch++
	for _, k := range keys {
		delete(g.versions, k)
	}
}

func versionKey(tenant, project string) string { return tenant + "\x00" + project }
