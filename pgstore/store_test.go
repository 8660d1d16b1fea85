package pgstore_test

import (
	"errors"
	"testing"
	"time"

	"github.com/groupgate/groupgate/audit"
	"github.com/groupgate/groupgate/audit/audittest"
	"github.com/groupgate/groupgate/internal/pgtest"
	"github.com/groupgate/groupgate/pgstore"
	"github.com/groupgate/groupgate/tenants"
	"github.com/groupgate/groupgate/tenants/tenantstest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// mustOpen opens a store on a fresh database, closed when t ends.
func mustOpen(t *testing.T) *pgstore.Store {
	t.Helper()
	return mustOpenDSN(t, pgtest.DSN(t))
}

// mustOpenDSN opens another store (another pool: a replica) on dsn.
func mustOpenDSN(t *testing.T, dsn string) *pgstore.Store {
	t.Helper()
	s, err := pgstore.Open(t.Context(), pgstore.Config{DSN: dsn, MaxConns: 4})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// twoReplicas opens two stores on one fresh database, as two replicas
// sharing it would.
func twoReplicas(t *testing.T) (a, b *pgstore.Store) {
	t.Helper()
	dsn := pgtest.DSN(t)
	return mustOpenDSN(t, dsn), mustOpenDSN(t, dsn)
}

func TestTenantsStore(t *testing.T) {
	tenantstest.RunStoreTests(t, func(t *testing.T) tenants.Store { return mustOpen(t) })
}

func TestTenantsStoreConcurrency(t *testing.T) {
	tenantstest.RunConcurrencyTests(t, func(t *testing.T) tenants.Store { return mustOpen(t) })
}

func TestAuditStore(t *testing.T) {
	audittest.RunStoreTests(t, func(t *testing.T) audit.Store { return mustOpen(t) })
}

func TestAuditStoreConcurrency(t *testing.T) {
	audittest.RunConcurrencyTests(t, func(t *testing.T) audit.Store { return mustOpen(t) })
}

// TestUnstorableNamesAreUnknown: names PostgreSQL text cannot hold (a NUL,
// invalid UTF-8), as a request path might carry, are unknown names, not
// database errors.
func TestUnstorableNamesAreUnknown(t *testing.T) {
	s := mustOpen(t)
	ctx := t.Context()
	for _, name := range []string{"SHIP\x00", "\xff"} {
		if _, err := s.Tenant(ctx, name); !errors.Is(err, tenants.ErrNotFound) {
			t.Errorf("Tenant(%q): %v", name, err)
		}
		if _, err := s.Project(ctx, "SHIP", name); !errors.Is(err, tenants.ErrNotFound) {
			t.Errorf("Project(%q): %v", name, err)
		}
		if _, err := s.Key(ctx, name); !errors.Is(err, tenants.ErrNotFound) {
			t.Errorf("Key(%q): %v", name, err)
		}
		if _, err := s.UpdateKey(ctx, name, func(*tenants.Key) error { return nil }); !errors.Is(err, tenants.ErrNotFound) {
			t.Errorf("UpdateKey(%q): %v", name, err)
		}
		if ps, err := s.Projects(ctx, name); err != nil || len(ps) != 0 {
			t.Errorf("Projects(%q): %v, %v", name, ps, err)
		}
		if ps, err := s.ProjectsByIssuer(ctx, name); err != nil || len(ps) != 0 {
			t.Errorf("ProjectsByIssuer(%q): %v, %v", name, ps, err)
		}
		if ks, err := s.Keys(ctx, name); err != nil || len(ks) != 0 {
			t.Errorf("Keys(%q): %v, %v", name, ks, err)
		}
		if err := s.TouchKeys(ctx, map[string]time.Time{name: time.Now()}); err != nil {
			t.Errorf("TouchKeys(%q): %v", name, err)
		}
	}
}
