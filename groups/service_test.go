package groups_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/internal/memstore"
	"github.com/groupgate/groupgate/internal/testkit"
	"github.com/groupgate/groupgate/queue"
)

// scheduler is the queue as the service sees it: it records wakes and
// notifications, with fixed limits and pace.
type scheduler struct {
	mu       sync.Mutex
	limits   queue.Limits
	woken    []string
	notified []string
}

func (s *scheduler) Wake(tenant string) {
	s.mu.Lock()
	s.woken = append(s.woken, tenant)
	s.mu.Unlock()
}
func (s *scheduler) Notify(id string) {
	s.mu.Lock()
	s.notified = append(s.notified, id)
	s.mu.Unlock()
}
func (s *scheduler) Limits(string) queue.Limits {
	return s.limits
}
func (s *scheduler) Interval(string) time.Duration { return time.Second }

func (s *scheduler) wakes() int { s.mu.Lock(); defer s.mu.Unlock(); return len(s.woken) }

// quotas gives every tenant the same limits.
type quotas struct{ tenant, project int }

func (q quotas) GroupLimits(context.Context, string, string) (int, int, error) {
	return q.tenant, q.project, nil
}

// serviceFixture is a Service over the in-memory store.
type serviceFixture struct {
	svc    *groups.Service
	store  *memstore.Store
	ledger *groups.Ledger
	queue  *scheduler
	clock  *testkit.Clock
}

func newService(t *testing.T, q quotas, limits queue.Limits) *serviceFixture {
	t.Helper()
	f := &serviceFixture{store: memstore.New(), queue: &scheduler{limits: limits}, clock: testkit.NewClock(t0)}
	f.ledger = groups.NewLedger(f.store)
	f.svc = groups.NewService(groups.ServiceConfig{Store: f.store, Queue: f.queue, Quotas: q, Now: f.clock.Now})
	return f
}

var t0 = time.Date(2026, 3, 2, 9, 15, 0, 0, time.UTC)

func (f *serviceFixture) name(t *testing.T, group string) groups.Name {
	t.Helper()
	n, err := f.svc.Name("SHIP", "MOH", group)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// create queues the creation of group in SHIP:MOH as the caller key:moh.
func (f *serviceFixture) create(t *testing.T, group, description string) (groups.Name, queue.Operation) {
	t.Helper()
	n := f.name(t, group)
	op, _, err := f.svc.Create(t.Context(), groups.Request{Actor: "key:moh"}, n, description)
	if err != nil {
		t.Fatalf("Create(%s): %v", n, err)
	}
	return n, op
}

// activate commits a create as the dispatcher does after TechPass made the
// group, with members.
func (f *serviceFixture) activate(t *testing.T, op queue.Operation, upstreamID string, members ...groups.User) {
	t.Helper()
	n := groups.Name{Tenant: op.Tenant, Project: op.Project}
	n.Group = op.Target[len(n.Tenant)+len(n.Project)+2:]
	g, err := f.store.Group(t.Context(), n)
	if err != nil {
		t.Fatal(err)
	}
	op.State, op.FinishedAt = queue.Succeeded, f.clock.Now()
	effects := []groups.Effect{groups.Created{Name: n, UpstreamID: upstreamID, At: f.clock.Now(), MembersKnown: true, Description: g.Description}}
	if len(members) > 0 {
		effects = append(effects, groups.MembersAdded{Name: n, Users: members, At: f.clock.Now()})
	}
	if err := f.ledger.Complete(t.Context(), op, effects); err != nil {
		t.Fatalf("Complete: %v", err)
	}
}

func TestServiceCreateQueuesOnceAndReplays(t *testing.T) {
	f := newService(t, quotas{}, queue.Limits{})
	ctx := t.Context()
	n := f.name(t, "billing")
	req := groups.Request{Actor: "key:moh", IdempotencyKey: "k1", Fingerprint: "fp-1"}
	op, replayed, err := f.svc.Create(ctx, req, n, "Billing team")
	if err != nil || replayed {
		t.Fatalf("Create = %v, replayed %v", err, replayed)
	}
	if op.State != queue.Queued || op.Kind != groups.KindCreate || op.Seq == 0 || op.Idempotency == nil {
		t.Fatalf("queued operation = %+v", op)
	}
	g, err := f.svc.Get(ctx, n)
	if err != nil || g.State != groups.Creating || g.PendingOperation != op.ID || g.Revision == 0 {
		t.Fatalf("group after Create = %+v, %v; want creating, naming the operation, with a revision", g, err)
	}
	if f.queue.wakes() != 1 {
		t.Errorf("dispatcher woken %d times, want 1", f.queue.wakes())
	}

	again, replayed, err := f.svc.Create(ctx, req, n, "Billing team")
	if err != nil || !replayed || again.ID != op.ID {
		t.Fatalf("repeat with the same key = %s, replayed %v, %v; want the original %s", again.ID, replayed, err, op.ID)
	}
	other := req
	other.Fingerprint = "fp-2"
	if _, _, err := f.svc.Create(ctx, other, n, "Other"); !errors.Is(err, queue.ErrIdempotencyMismatch) {
		t.Fatalf("same key, other request = %v; want ErrIdempotencyMismatch", err)
	}
	if _, _, err := f.svc.Create(ctx, groups.Request{Actor: "key:moh"}, f.name(t, "BILLING"), ""); !errors.Is(err, groups.ErrExists) {
		t.Fatalf("create of a name taken in another case = %v; want ErrExists", err)
	}
	if d, _ := f.store.Depth(ctx, "SHIP"); d.Total != 1 {
		t.Fatalf("Depth = %d, want 1 (one create queued)", d.Total)
	}
}

func TestServiceCreateLimits(t *testing.T) {
	ctx := context.Background()
	actor := groups.Request{Actor: "key:moh"}

	f := newService(t, quotas{tenant: 10, project: 1}, queue.Limits{})
	if _, _, err := f.svc.Create(ctx, actor, f.name(t, "a"), ""); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.Create(ctx, actor, f.name(t, "b"), ""); !errors.Is(err, groups.ErrQuota) {
		t.Fatalf("second group under a quota of 1 = %v; want ErrQuota", err)
	}

	f = newService(t, quotas{tenant: 1}, queue.Limits{})
	if _, _, err := f.svc.Create(ctx, actor, f.name(t, "a"), ""); err != nil {
		t.Fatal(err)
	}
	other, _ := f.svc.Name("SHIP", "HR", "b")
	if _, _, err := f.svc.Create(ctx, actor, other, ""); !errors.Is(err, groups.ErrLimit) {
		t.Fatalf("second group of a tenant limited to 1 (pending create counted) = %v; want ErrLimit", err)
	}

	f = newService(t, quotas{}, queue.Limits{Tenant: 1})
	if _, _, err := f.svc.Create(ctx, actor, f.name(t, "a"), ""); err != nil {
		t.Fatal(err)
	}
	_, _, err := f.svc.Create(ctx, actor, f.name(t, "b"), "")
	var full *queue.QueueFullError
	if !errors.As(err, &full) || full.Depth.Total != 1 || full.RetryAfter <= 0 {
		t.Fatalf("create on a full queue = %v; want a QueueFullError with depth 1 and a Retry-After", err)
	}
	if _, err := f.svc.Get(ctx, f.name(t, "b")); !errors.Is(err, groups.ErrNotFound) {
		t.Fatalf("refused create left a group: %v", err)
	}
}

func TestServiceCancelRevertsTheMirror(t *testing.T) {
	f := newService(t, quotas{}, queue.Limits{})
	ctx := t.Context()
	actor := groups.Request{Actor: "key:moh"}
	n, op := f.create(t, "billing", "")
	cancelled, err := f.svc.Cancel(ctx, op)
	if err != nil || cancelled.State != queue.Cancelled {
		t.Fatalf("Cancel = %s, %v", cancelled.State, err)
	}
	if _, err := f.svc.Get(ctx, n); !errors.Is(err, groups.ErrNotFound) {
		t.Fatalf("the cancelled create's reservation is still there: %v", err)
	}
	if again, err := f.svc.Cancel(ctx, op); err != nil || again.State != queue.Cancelled {
		t.Fatalf("second Cancel = %s, %v; want the cancelled operation", again.State, err)
	}

	op, _, err = f.svc.Create(ctx, actor, n, "")
	if err != nil {
		t.Fatal(err)
	}
	f.activate(t, op, "g-1")
	del, _, err := f.svc.Delete(ctx, actor, n)
	if err != nil {
		t.Fatal(err)
	}
	if g, _ := f.svc.Get(ctx, n); g.State != groups.Deleting {
		t.Fatalf("group after Delete is %s, want deleting", g.State)
	}
	if _, _, err := f.svc.Delete(ctx, actor, n); !errors.Is(err, groups.ErrPending) {
		t.Fatalf("second Delete = %v; want ErrPending", err)
	}
	if _, err := f.svc.Cancel(ctx, del); err != nil {
		t.Fatal(err)
	}
	if g, _ := f.svc.Get(ctx, n); g.State != groups.Active || g.UpstreamID != "g-1" {
		t.Fatalf("group after the delete was cancelled: %s %q; want active with its upstream id", g.State, g.UpstreamID)
	}
	if !slices.Contains(f.queue.notified, del.ID) {
		t.Errorf("cancel of %s not signalled as settled", del.ID)
	}
	if d, _ := f.store.Depth(ctx, "SHIP"); d.Total != 0 {
		t.Fatalf("Depth = %d after cancelling everything, want 0", d.Total)
	}
}

func TestServiceUpdateRevisionRule(t *testing.T) {
	f := newService(t, quotas{}, queue.Limits{})
	ctx := t.Context()
	actor := groups.Request{Actor: "key:moh"}
	n, op := f.create(t, "billing", "old")
	f.activate(t, op, "g-1")
	g, _ := f.svc.Get(ctx, n)
	if _, _, _, err := f.svc.Update(ctx, actor, n, "new", g.Revision+1); !errors.Is(err, groups.ErrRevision) {
		t.Fatalf("Update at a wrong revision = %v; want ErrRevision", err)
	}
	stored, upd, _, err := f.svc.Update(ctx, actor, n, "new", g.Revision)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Description != "new" || stored.PendingUpdate != upd.ID || stored.Revision <= g.Revision {
		t.Fatalf("group after Update = %+v; want the new description, pending, a later revision than %d", stored, g.Revision)
	}
	// A failed update restores what TechPass confirmed.
	upd.State = queue.Failed
	if err := f.ledger.Complete(ctx, upd, groups.Undo(upd, f.clock.Now())); err != nil {
		t.Fatal(err)
	}
	if back, _ := f.svc.Get(ctx, n); back.Description != "old" || back.PendingUpdate != "" || back.Revision <= stored.Revision {
		t.Fatalf("group after the update failed = %+v; want \"old\" restored at a later revision", back)
	}
}

func TestServiceChangeMembersShownDoneIsRecordedNotQueued(t *testing.T) {
	f := newService(t, quotas{}, queue.Limits{})
	ctx := t.Context()
	actor := groups.Request{Actor: "key:moh"}
	ann := groups.User{ID: "00000000-0000-4000-8000-000000000001", Email: "ann@example.gov.sg"}
	n, op := f.create(t, "billing", "")
	f.activate(t, op, "g-1", ann)

	done, _, err := f.svc.ChangeMembers(ctx, actor, n, []string{"Ann@example.gov.sg"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, _, _ := groups.DecodeMembersResult(done.Result)
	if done.State != queue.Succeeded || len(res.Unchanged) != 1 || res.Unchanged[0] != "ann@example.gov.sg" {
		t.Fatalf("adding a member the mirror shows = %s %+v; want succeeded with the user unchanged", done.State, res)
	}
	if d, _ := f.store.Depth(ctx, "SHIP"); d.Total != 0 {
		t.Fatalf("Depth = %d; a change the mirror shows done is not queued", d.Total)
	}

	queued, _, err := f.svc.ChangeMembers(ctx, actor, n, []string{"bob@example.gov.sg"}, nil)
	if err != nil || queued.State != queue.Queued {
		t.Fatalf("adding an unknown user = %s, %v; want queued", queued.State, err)
	}
	if g, _ := f.svc.Get(ctx, n); g.PendingMembers != 1 {
		t.Fatalf("PendingMembers = %d, want 1", g.PendingMembers)
	}
	// While a change is pending the mirror cannot show one done: it queues.
	next, _, err := f.svc.ChangeMembers(ctx, actor, n, []string{"ann@example.gov.sg"}, nil)
	if err != nil || next.State != queue.Queued {
		t.Fatalf("change while another is pending = %s, %v; want queued", next.State, err)
	}
}
