package groupstest

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/internal/testkit"
	"github.com/groupgate/groupgate/queue"
)

// RunCreateBenchmark measures what a POST create commits
// (groups.Ledger.CreatePending: the queue limits, the group limit and name
// check, the group and the queued operation, in one Update) with 1 and 64
// writers, and reports each call's latency percentiles (testkit.RunWriters).
// Each writer has its own tenant, filled up to the default group limit (50)
// and then replaced by a fresh one, so writers contend for the store, not
// for a tenant's limits. With idempotent, every operation carries an
// idempotency key, checked and stored in the same Update.
//
// A backend runs it with one call:
//
//	func BenchmarkCreatePending(b *testing.B) {
//		groupstest.RunCreateBenchmark(b, openBenchStore, false)
//	}
//
// newStore is called once per writer count and must return an empty store
// that it closes with b.Cleanup.
func RunCreateBenchmark(b *testing.B, newStore func(b *testing.B) groups.Store, idempotent bool) {
	const groupLimit = 50
	for _, writers := range []int{1, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			ledger := groups.NewLedger(newStore(b))
			limits := groups.Limits{Groups: groupLimit, Queue: queue.Limits{Tenant: 10000, Project: 1000}}
			counts := make([]int, writers+runtime.GOMAXPROCS(0))
			testkit.RunWriters(b, writers, func(ctx context.Context, writer int) error {
				i := counts[writer]
				counts[writer]++
				name := groups.Name{Tenant: fmt.Sprintf("W%02dN%06d", writer, i/groupLimit), Project: "MOH", Group: fmt.Sprintf("team-%02d", i%groupLimit)}
				now := time.Now()
				op := queue.Operation{
					ID: queue.NewID(), Tenant: name.Tenant, Project: name.Project, Kind: groups.KindCreate,
					Target: name.String(), Payload: []byte(`{"fullName":"` + name.String() + `","description":"Staff who can issue and void invoices."}`),
					Actor: "key:0123456789abcdef0123", State: queue.Queued, CreatedAt: now, UpdatedAt: now,
				}
				if idempotent {
					op.Idempotency = &queue.Idempotency{Scope: op.Actor, Key: fmt.Sprintf("bench-%02d-%07d", writer, i), Fingerprint: "f", Expires: now.Add(24 * time.Hour)}
				}
				g := groups.Group{Name: name, Description: "bench", State: groups.Creating, PendingOperation: op.ID, CreatedAt: now, UpdatedAt: now}
				_, err := ledger.CreatePending(ctx, g, op, limits)
				return err
			})
		})
	}
}
