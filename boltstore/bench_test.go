package boltstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/groupgate/groupgate/boltstore"
	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/groups/groupstest"
	"github.com/groupgate/groupgate/internal/testkit"
	"github.com/groupgate/groupgate/queue"
)

// benchBacklog bounds the operations one tenant holds pending during an
// enqueue benchmark: the benchmark moves on to a fresh tenant after it, so
// ns/op does not drift with b.N. It is the default per-project queue limit.
const benchBacklog = 1000

// BenchmarkEnqueue measures durable enqueues (Store.Enqueue: one fsynced
// group commit per batch of concurrent writers) through a real store file,
// with 1 and 64 writers, and reports each call's latency percentiles.
// Every writer is its own project of one tenant; the tenant changes every
// benchBacklog operations (see there).
func BenchmarkEnqueue(b *testing.B) {
	for _, writers := range []int{1, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			st := openBenchStore(b)
			limits := queue.Limits{Tenant: 10000, Project: benchBacklog}
			var seq atomic.Int64
			testkit.RunWriters(b, writers, func(ctx context.Context, writer int) error {
				n := seq.Add(1)
				_, err := groups.NewLedger(st).Enqueue(ctx, benchOperation(n, writer), limits)
				return err
			})
		})
	}
}

// BenchmarkCreatePending is BenchmarkEnqueue for what a POST create
// commits: the operation and the group's mirror record together, after the
// namespace group limit check (groupstest.RunCreateBenchmark).
func BenchmarkCreatePending(b *testing.B) {
	groupstest.RunCreateBenchmark(b, func(b *testing.B) groups.Store { return openBenchStore(b) }, false)
}

// benchOperation is the n-th group create of writer, shaped like the ones
// the API queues.
func benchOperation(n int64, writer int) queue.Operation {
	tenant := fmt.Sprintf("T%04d", n/benchBacklog)
	project := fmt.Sprintf("P%02d", writer)
	target := fmt.Sprintf("%s:%s:group-%07d", tenant, project, n)
	payload, _ := json.Marshal(map[string]string{"fullName": target, "description": "Staff who can issue and void invoices."})
	now := time.Now()
	return queue.Operation{
		ID: queue.NewID(), Tenant: tenant, Project: project, Kind: "group.create",
		Target: target, Payload: payload, Actor: "key:0123456789abcdef0123", State: queue.Queued,
		CreatedAt: now, UpdatedAt: now,
	}
}

// openBenchStore opens a store in b.TempDir(), closing it and checking its
// integrity at the end.
func openBenchStore(b *testing.B) *boltstore.Store {
	b.Helper()
	st, err := boltstore.Open(filepath.Join(b.TempDir(), "bench.db"), time.Second)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := st.Check(); err != nil {
			b.Errorf("store integrity: %v", err)
		}
		if err := st.Close(); err != nil {
			b.Error(err)
		}
	})
	return st
}
