package pgstore_test

import (
	"testing"
	"time"

	"github.com/groupgate/groupgate/internal/pgtest"
	"github.com/groupgate/groupgate/internal/testkit"
	"github.com/groupgate/groupgate/pgstore"
	"github.com/groupgate/groupgate/tenants"
	"github.com/groupgate/groupgate/tenants/tenantstest"
)

// openCached opens a store on dsn whose tenants generation is kept for
// ttl by clk.
func openCached(t *testing.T, dsn string, ttl time.Duration, clk *testkit.Clock) *pgstore.Store {
	t.Helper()
	s, err := pgstore.Open(t.Context(), pgstore.Config{DSN: dsn, MaxConns: 4, GenerationTTL: ttl, Now: clk.Now})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

func generation(t *testing.T, s *pgstore.Store) uint64 {
	t.Helper()
	g, err := s.Generation(t.Context())
	if err != nil {
		t.Fatalf("Generation: %v", err)
	}
	return g
}

// TestTenantsStoreCachedGeneration: the tenants conformance suite holds
// with the generation cached (a store sees its own writes at once).
func TestTenantsStoreCachedGeneration(t *testing.T) {
	clk := testkit.NewClock(time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC))
	tenantstest.RunStoreTests(t, func(t *testing.T) tenants.Store { return openCached(t, pgtest.DSN(t), time.Hour, clk) })
}

// TestTenantsStoreCachedGenerationConcurrency: the concurrency cases hold
// with the generation cached (it never decreases).
func TestTenantsStoreCachedGenerationConcurrency(t *testing.T) {
	tenantstest.RunConcurrencyTests(t, func(t *testing.T) tenants.Store {
		return openCached(t, pgtest.DSN(t), time.Hour, testkit.NewClock(time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)))
	})
}

// TestGenerationCacheBound: a change committed through another replica,
// whose signal never arrives, is seen once the TTL has passed since the
// cached value was read, and not later; a signal (FollowTenants'
// invalidation, here a Resync from a listener) makes it seen at once.
func TestGenerationCacheBound(t *testing.T) {
	const ttl = time.Second
	dsn := pgtest.DSN(t)
	clk := testkit.NewClock(time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC))
	a := mustOpenDSN(t, dsn)
	b := openCached(t, dsn, ttl, clk)
	before := generation(t, b)
	if err := a.CreateTenant(t.Context(), tenants.Tenant{Name: "SHIP"}); err != nil {
		t.Fatal(err)
	}
	changed := generation(t, a)
	if changed == before {
		t.Fatal("the generation did not move on a write")
	}
	if g := generation(t, b); g != before {
		t.Fatalf("B read %d within its TTL, want its cached %d (is the cache on?)", g, before)
	}
	clk.Advance(ttl - time.Millisecond)
	if g := generation(t, b); g != before {
		t.Fatalf("B read %d just inside its TTL, want its cached %d", g, before)
	}
	clk.Advance(time.Millisecond)
	if g := generation(t, b); g != changed {
		t.Fatalf("B read %d a TTL after its last read, want %d (the bound is broken)", g, changed)
	}

	// A signal drops the cached value at once.
	l, err := b.NewListener(pgstore.ListenerConfig{Channels: []string{pgstore.ChannelTenants}, PollOnly: true, PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.FollowTenants(l); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.UpdateTenant(t.Context(), "SHIP", func(tn *tenants.Tenant, _ *[]tenants.Project) error {
		tn.Disabled = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	again := generation(t, a)
	if g := generation(t, b); g != changed {
		t.Fatalf("B read %d before any signal, want its cached %d", g, changed)
	}
	go func() { _ = l.Run(t.Context()) }()
	testkit.Eventually(t, 5*time.Second, "B to read the new generation after a signal, its clock stopped", func() bool {
		return generation(t, b) == again
	})

	// B's own writes are seen by B at once.
	if err := b.CreateTenant(t.Context(), tenants.Tenant{Name: "PORT"}); err != nil {
		t.Fatal(err)
	}
	if g, want := generation(t, b), generation(t, a); g != want {
		t.Fatalf("B read %d after its own write, want %d", g, want)
	}
}
