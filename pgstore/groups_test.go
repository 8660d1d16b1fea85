package pgstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/groups/groupstest"
	"github.com/groupgate/groupgate/pgstore"
	"github.com/groupgate/groupgate/queue"
	"github.com/groupgate/groupgate/queue/queuetest"
	"github.com/groupgate/groupgate/webhooks"
	"github.com/groupgate/groupgate/webhooks/webhookstest"
)

// The group mirror and queue conformance suites, as they run against bbolt
// (boltstore) and in memory (groups/memstore_test.go): on one pool, and
// with every call spread over two pools (two replicas) in turn.

// groupsStore opens a store on a fresh database, checking its pending
// counts at clean-up.
func groupsStore(t *testing.T) groups.Store {
	s := mustOpen(t)
	checkPendingAtCleanup(t, s)
	return s
}

func groupsStoreAcrossReplicas(t *testing.T) groups.Store {
	r := newRoundRobin(t, 2)
	checkPendingAtCleanup(t, r.stores[0])
	return r
}

// checkPendingAtCleanup runs CheckPending when t ends, before the stores
// close (clean-ups run last registered first).
func checkPendingAtCleanup(t *testing.T, s *pgstore.Store) {
	t.Cleanup(func() {
		if err := s.CheckPending(context.Background()); err != nil {
			t.Error(err)
		}
	})
}

func TestGroupsStore(t *testing.T) { groupstest.RunStoreTests(t, groupsStore) }

func TestGroupsStoreConcurrency(t *testing.T) { groupstest.RunConcurrencyTests(t, groupsStore) }

func TestQueueStore(t *testing.T) {
	queuetest.RunStoreTests(t, func(t *testing.T) queue.Store[groups.Effect] {
		return groups.NewLedger(groupsStore(t))
	}, groupstest.FailingEffect)
}

func TestQueueStoreConcurrency(t *testing.T) {
	queuetest.RunConcurrencyTests(t, func(t *testing.T) queue.Store[groups.Effect] {
		return groups.NewLedger(groupsStore(t))
	}, groupstest.FailingEffect)
}

// TestGroupsStoreAcrossReplicas: the groups suites with each call made by
// one of two pools in turn: a write made through one replica is read
// through the other, and the concurrency cases (one name taken once, the
// group limit, serialized read-then-write transactions) race writers on
// both.
func TestGroupsStoreAcrossReplicas(t *testing.T) {
	groupstest.RunStoreTests(t, groupsStoreAcrossReplicas)
	groupstest.RunConcurrencyTests(t, groupsStoreAcrossReplicas)
}

// TestQueueStoreAcrossReplicas: the queue suites over two pools in
// turn: queue limits and idempotency keys hold with writers on both.
func TestQueueStoreAcrossReplicas(t *testing.T) {
	newLedger := func(t *testing.T) queue.Store[groups.Effect] {
		return groups.NewLedger(groupsStoreAcrossReplicas(t))
	}
	queuetest.RunStoreTests(t, newLedger, groupstest.FailingEffect)
	queuetest.RunConcurrencyTests(t, newLedger, groupstest.FailingEffect)
}

func (r *roundRobin) Update(ctx context.Context, tenant string, fn func(groups.Tx) error) error {
	return r.next().Update(ctx, tenant, fn)
}
func (r *roundRobin) View(ctx context.Context, tenant string, fn func(groups.Tx) error) error {
	return r.next().View(ctx, tenant, fn)
}
func (r *roundRobin) UpdateOperation(ctx context.Context, id string, fn func(*queue.Operation) error) (queue.Operation, error) {
	return r.next().UpdateOperation(ctx, id, fn)
}
func (r *roundRobin) Operation(ctx context.Context, id string) (queue.Operation, error) {
	return r.next().Operation(ctx, id)
}
func (r *roundRobin) Heads(ctx context.Context, tenant string) ([]queue.Operation, error) {
	return r.next().Heads(ctx, tenant)
}
func (r *roundRobin) Depth(ctx context.Context, tenant string) (queue.Depth, error) {
	return r.next().Depth(ctx, tenant)
}
func (r *roundRobin) Place(ctx context.Context, op queue.Operation) (int, queue.Depth, error) {
	return r.next().Place(ctx, op)
}
func (r *roundRobin) Idempotent(ctx context.Context, scope, key string, now time.Time) (string, string, bool, error) {
	return r.next().Idempotent(ctx, scope, key, now)
}
func (r *roundRobin) PurgeIdempotency(ctx context.Context, now time.Time) (int, error) {
	return r.next().PurgeIdempotency(ctx, now)
}
func (r *roundRobin) Group(ctx context.Context, name groups.Name) (groups.Group, error) {
	return r.next().Group(ctx, name)
}
func (r *roundRobin) Groups(ctx context.Context, tenant, project string) ([]groups.Group, error) {
	return r.next().Groups(ctx, tenant, project)
}
func (r *roundRobin) GroupsVersion(ctx context.Context, tenant, project string) (uint64, error) {
	return r.next().GroupsVersion(ctx, tenant, project)
}
func (r *roundRobin) ListGroups(ctx context.Context, tenant string, q groups.PageQuery) ([]groups.Group, bool, error) {
	return r.next().ListGroups(ctx, tenant, q)
}
func (r *roundRobin) ListMembers(ctx context.Context, name groups.Name, q groups.PageQuery) ([]groups.User, bool, error) {
	return r.next().ListMembers(ctx, name, q)
}
func (r *roundRobin) KnownUsers(ctx context.Context, tenant string, ids []string) (map[string]groups.User, error) {
	return r.next().KnownUsers(ctx, tenant, ids)
}
func (r *roundRobin) GroupsSyncedAt(ctx context.Context, tenant string) (time.Time, error) {
	return r.next().GroupsSyncedAt(ctx, tenant)
}
func (r *roundRobin) DeletedUsers(ctx context.Context, tenant string, ids []string) (map[string]groups.DeletedUser, error) {
	return r.next().DeletedUsers(ctx, tenant, ids)
}

// TestWebhookStore: the webhook delivery suite (deliveries, deleted-user
// marks, their effects on the mirror in one transaction).
func TestWebhookStore(t *testing.T) {
	webhookstest.RunStoreTests(t, func(t *testing.T) webhookstest.Store {
		s := mustOpen(t)
		checkPendingAtCleanup(t, s)
		return s
	})
}

// TestWebhookStoreAcrossReplicas: the webhook suite over two pools in turn.
func TestWebhookStoreAcrossReplicas(t *testing.T) {
	webhookstest.RunStoreTests(t, func(t *testing.T) webhookstest.Store { return newRoundRobin(t, 2) })
}

func (r *roundRobin) UpdateDeliveries(ctx context.Context, tenant string, fn func(webhooks.Tx) error) error {
	return r.next().UpdateDeliveries(ctx, tenant, fn)
}
func (r *roundRobin) PruneDeliveries(ctx context.Context, now time.Time) (int, error) {
	return r.next().PruneDeliveries(ctx, now)
}
