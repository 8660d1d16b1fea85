package pgstore_test

import (
	"testing"

	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/groups/groupstest"
	"github.com/groupgate/groupgate/internal/pgtest"
	"github.com/groupgate/groupgate/pgstore"
)

// BenchmarkCreatePending measures what a POST create commits on
// PostgreSQL (groups.Ledger.CreatePending: the idempotency check, the
// queue limits, the group limit and name check, the group and the queued
// operation with its idempotency key, in one Update), with 1 and 64
// writers on a pool of 16 connections, and reports each call's latency
// percentiles. Each writer has its own tenant, filled up to the default
// group limit (50) and then replaced by a fresh one, so writers contend
// for connections and the database, not for a tenant's lock.
//
// The test cluster runs with fsync off (internal/pgtest), so this measures
// the store's statements and round trips, not a disk's flush.
func BenchmarkCreatePending(b *testing.B) {
	groupstest.RunCreateBenchmark(b, func(b *testing.B) groups.Store {
		st, err := pgstore.Open(b.Context(), pgstore.Config{DSN: pgtest.DSN(b), MaxConns: 16})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(st.Close)
		return st
	}, true)
}
