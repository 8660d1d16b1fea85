package pgstore_test

import (
	"testing"

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
