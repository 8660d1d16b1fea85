package pgstore_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/internal/pgtest"
	"github.com/groupgate/groupgate/internal/testkit"
	"github.com/groupgate/groupgate/pgstore"
	queuepkg "github.com/groupgate/groupgate/queue"
)

// What groups.Store on PostgreSQL guarantees beyond the conformance
// suites: its transactions' failure modes, and what holds across replicas.

var t0 = time.Date(2026, 3, 2, 9, 15, 0, 0, time.UTC)

// queuedOp is a group create of n, as the API queues it.
func queuedOp(n groups.Name) queuepkg.Operation {
	return queuepkg.Operation{
		ID: queuepkg.NewID(), Tenant: n.Tenant, Project: n.Project, Kind: groups.KindCreate, Target: n.String(),
		Payload: []byte(`{}`), Actor: "key:ci", State: queuepkg.Queued, CreatedAt: t0, UpdatedAt: t0,
	}
}

// atCommitOn makes every later insert into table run body (PL/pgSQL) at
// COMMIT, through a deferred constraint trigger.
func atCommitOn(t *testing.T, dsn, table, body string) {
	t.Helper()
	admin := adminConn(t, dsn)
	for _, sql := range []string{
		"CREATE FUNCTION at_commit_" + table + "() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN " + body + "; RETURN NULL; END $$",
		"CREATE CONSTRAINT TRIGGER at_commit AFTER INSERT ON " + table + " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION at_commit_" + table + "()",
	} {
		if _, err := admin.Exec(t.Context(), sql); err != nil {
			t.Fatal(err)
		}
	}
}

// TestUpdateCommitWithoutAnswerIsAmbiguous: an Update whose COMMIT is cut
// (its backend terminated while the COMMIT runs) returns
// ErrAmbiguousCommit; here nothing was stored, and a retry with the same
// idempotency key enqueues once.
func TestUpdateCommitWithoutAnswerIsAmbiguous(t *testing.T) {
	dsn := pgtest.DSN(t)
	s := mustOpenDSN(t, dsn)
	ledger := groups.NewLedger(s)
	atCommitOn(t, dsn, "queue", "PERFORM pg_sleep(30)")
	n := groups.Name{Tenant: "SHIP", Project: "MOH", Group: "billing"}
	op := queuedOp(n)
	op.Idempotency = &queuepkg.Idempotency{Scope: "key:ci", Key: "k1", Fingerprint: "f", Expires: t0.Add(time.Hour)}
	done := make(chan error, 1)
	go func() { _, err := ledger.Enqueue(t.Context(), op, queuepkg.Limits{}); done <- err }()
	admin := adminConn(t, dsn)
	testkit.Eventually(t, 10*time.Second, "the COMMIT to be under way", func() bool {
		var n int
		if err := admin.QueryRow(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event = 'PgSleep' AND lower(query) = 'commit'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	})
	if err := <-done; !errors.Is(err, pgstore.ErrAmbiguousCommit) {
		t.Fatalf("Enqueue whose COMMIT got no answer: %v, want ErrAmbiguousCommit", err)
	}
	if _, err := admin.Exec(t.Context(), "DROP TRIGGER at_commit ON queue"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Operation(t.Context(), op.ID); !errors.Is(err, queuepkg.ErrNotFound) {
		t.Fatalf("operation after the cut commit: %v, want none", err)
	}
	if _, err := ledger.Enqueue(t.Context(), op, queuepkg.Limits{}); err != nil {
		t.Fatalf("retry: %v", err)
	}
	var replay *queuepkg.ReplayError
	if _, err := ledger.Enqueue(t.Context(), op, queuepkg.Limits{}); !errors.As(err, &replay) || replay.OperationID != op.ID {
		t.Fatalf("second retry: %v, want a replay of %s", err, op.ID)
	}
	if d, err := s.Depth(t.Context(), "SHIP"); err != nil || d.Total != 1 {
		t.Fatalf("depth %+v, %v; want 1", d, err)
	}
}

// TestUpdateRunsAgainAfterSerializationFailure: a transaction that fails
// with a serialization failure (40001, here raised at its COMMIT once)
// runs again, fn included, and only the last run's writes are kept.
func TestUpdateRunsAgainAfterSerializationFailure(t *testing.T) {
	dsn := pgtest.DSN(t)
	s := mustOpenDSN(t, dsn)
	// The failures are counted by a sequence, which a rollback does not undo.
	if _, err := adminConn(t, dsn).Exec(t.Context(), "CREATE SEQUENCE failures"); err != nil {
		t.Fatal(err)
	}
	atCommitOn(t, dsn, "groups", `IF nextval('failures') = 1 THEN
		RAISE EXCEPTION 'could not serialize' USING ERRCODE = '40001';
	END IF`)
	var runs atomic.Int32
	n := groups.Name{Tenant: "SHIP", Project: "MOH", Group: "billing"}
	err := s.Update(t.Context(), "SHIP", func(tx groups.Tx) error {
		run := runs.Add(1)
		rev, err := tx.NextRevision(0)
		if err != nil {
			return err
		}
		return tx.PutGroup(groups.Group{Name: n, State: groups.Active, Description: fmt.Sprintf("run %d", run), Revision: rev})
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if runs.Load() != 2 {
		t.Fatalf("fn ran %d times, want 2", runs.Load())
	}
	g, err := s.Group(t.Context(), n)
	if err != nil || g.Description != "run 2" || g.Revision != 1 {
		t.Fatalf("group %+v, %v; want the second run's, at revision 1", g, err)
	}
	if v, err := s.GroupsVersion(t.Context(), "SHIP", "MOH"); err != nil || v != 1 {
		t.Fatalf("GroupsVersion %d, %v; want 1", v, err)
	}
}

// TestIdempotencyKeyAcrossTenantsAndReplicas: one caller scope's key
// (keys are scoped by caller, not tenant) used at once for two tenants
// through two replicas queues exactly one operation; the other request is
// told it reuses the key.
func TestIdempotencyKeyAcrossTenantsAndReplicas(t *testing.T) {
	dsn := pgtest.DSN(t)
	a, b := groups.NewLedger(mustOpenDSN(t, dsn)), groups.NewLedger(mustOpenDSN(t, dsn))
	const rounds, tenants = 50, 4
	for round := range rounds {
		key := fmt.Sprintf("k%d", round)
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make([]error, tenants)
		for i := range tenants {
			l := []*groups.Ledger{a, b}[i%2]
			wg.Go(func() {
				op := queuedOp(groups.Name{Tenant: fmt.Sprintf("T%d", i), Project: "MOH", Group: "billing"})
				op.Idempotency = &queuepkg.Idempotency{Scope: "key:admin", Key: key, Fingerprint: fmt.Sprint(i), Expires: t0.Add(time.Hour)}
				<-start
				_, errs[i] = l.Enqueue(t.Context(), op, queuepkg.Limits{})
			})
		}
		close(start)
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, queuepkg.ErrIdempotencyMismatch):
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if ok != 1 {
			t.Fatalf("round %d: %d of %d requests with one key were queued (%v), want 1", round, ok, tenants, errs)
		}
	}
	total := 0
	for i := range tenants {
		d, err := a.Depth(t.Context(), fmt.Sprintf("T%d", i))
		if err != nil {
			t.Fatal(err)
		}
		total += d.Total
	}
	if total != rounds {
		t.Fatalf("%d operations queued, want %d", total, rounds)
	}
}

// TestGroupsVersionSeenByOtherReplica: a list cache keyed by
// GroupsVersion is right on every replica: a group written through one
// pool moves the version another pool reads next.
func TestGroupsVersionSeenByOtherReplica(t *testing.T) {
	a, b := twoReplicas(t)
	ctx := t.Context()
	n := groups.Name{Tenant: "SHIP", Project: "MOH", Group: "billing"}
	var last uint64
	for i := range 3 {
		err := a.Update(ctx, "SHIP", func(tx groups.Tx) error {
			return tx.PutGroup(groups.Group{Name: n, State: groups.Active, Description: fmt.Sprint(i), Revision: 1})
		})
		if err != nil {
			t.Fatal(err)
		}
		v, err := b.GroupsVersion(ctx, "SHIP", "MOH")
		if err != nil || v <= last {
			t.Fatalf("version read through the other pool after write %d: %d, %v; want more than %d", i, v, err, last)
		}
		last = v
		if g, err := b.Group(ctx, n); err != nil || g.Description != fmt.Sprint(i) {
			t.Fatalf("group read through the other pool: %+v, %v", g, err)
		}
	}
	if err := a.Update(ctx, "SHIP", func(tx groups.Tx) error { return tx.DeleteGroup(n) }); err != nil {
		t.Fatal(err)
	}
	if v, err := b.GroupsVersion(ctx, "SHIP", "MOH"); err != nil || v <= last {
		t.Fatalf("version after the removal: %d, %v; want more than %d", v, err, last)
	}
}

// TestEnqueueSignalsOnCommit: an Append signals the tenant on
// ChannelQueue after its transaction commits, and a failed Update signals
// nothing.
func TestEnqueueSignalsOnCommit(t *testing.T) {
	a, b := twoReplicas(t)
	queue := listenQueue(t, a, pgstore.ListenerConfig{})
	ctx := t.Context()
	boom := errors.New("refused")
	err := b.Update(ctx, "DOCK", func(tx groups.Tx) error {
		if _, err := tx.Append(queuedOp(groups.Name{Tenant: "DOCK", Project: "MOH", Group: "x"})); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want fn's error", err)
	}
	if _, err := groups.NewLedger(b).Enqueue(ctx, queuedOp(groups.Name{Tenant: "SHIP", Project: "MOH", Group: "y"}), queuepkg.Limits{}); err != nil {
		t.Fatal(err)
	}
	if n := queue.next(t, "enqueue"); n.Payload != "SHIP" {
		t.Fatalf("queue subscriber got %+v, want SHIP's enqueue (and nothing of the failed Update)", n)
	}
}

// TestUpdateOperationSerializedWithUpdate: UpdateOperation takes the
// operation's tenant's lock, so read-modify-writes of one operation through
// two replicas lose no increment.
func TestUpdateOperationSerializedWithUpdate(t *testing.T) {
	a, b := twoReplicas(t)
	ctx := t.Context()
	op, err := groups.NewLedger(a).Enqueue(ctx, queuedOp(groups.Name{Tenant: "SHIP", Project: "MOH", Group: "billing"}), queuepkg.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 8, 10
	var wg sync.WaitGroup
	for i := range writers {
		s := []*pgstore.Store{a, b}[i%2]
		wg.Go(func() {
			for range each {
				if i%4 == 0 {
					// Read-modify-write through Update, interleaved.
					err := s.Update(ctx, "SHIP", func(tx groups.Tx) error {
						o, err := tx.Operation(op.ID)
						if err != nil {
							return err
						}
						o.Attempts++
						return tx.PutOperation(o)
					})
					if err != nil {
						t.Error(err)
					}
					continue
				}
				if _, err := s.UpdateOperation(ctx, op.ID, func(o *queuepkg.Operation) error { o.Attempts++; return nil }); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	got, err := a.Operation(ctx, op.ID)
	if err != nil || got.Attempts != writers*each || got.Seq != op.Seq {
		t.Fatalf("operation after %d increments: attempts %d seq %d (%v), want %d at seq %d", writers*each, got.Attempts, got.Seq, err, writers*each, op.Seq)
	}
	if _, err := a.UpdateOperation(ctx, "op_missing", func(*queuepkg.Operation) error { return nil }); !errors.Is(err, queuepkg.ErrNotFound) {
		t.Fatalf("UpdateOperation of no operation: %v", err)
	}
	if _, err := a.UpdateOperation(ctx, op.ID, func(o *queuepkg.Operation) error { o.Tenant = "DOCK"; return nil }); err == nil {
		t.Fatal("UpdateOperation moved an operation to another tenant")
	}
}

// TestOperationIDOfAnotherTenant: an operation stored for one tenant is
// not overwritten by another tenant's transaction under the same id; the
// transaction fails and writes nothing.
func TestOperationIDOfAnotherTenant(t *testing.T) {
	s := mustOpen(t)
	ctx := t.Context()
	op, err := groups.NewLedger(s).Enqueue(ctx, queuedOp(groups.Name{Tenant: "SHIP", Project: "MOH", Group: "billing"}), queuepkg.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for _, how := range []string{"PutOperation", "Append"} {
		err := s.Update(ctx, "DOCK", func(tx groups.Tx) error {
			other := op
			other.Tenant = "DOCK"
			if how == "Append" {
				_, err := tx.Append(other)
				return err
			}
			return tx.PutOperation(other)
		})
		if err == nil {
			t.Fatalf("%s of another tenant's operation id succeeded", how)
		}
		if got, err := s.Operation(ctx, op.ID); err != nil || got.Tenant != "SHIP" {
			t.Fatalf("after %s: %+v, %v; want SHIP's operation", how, got, err)
		}
		if d, _ := s.Depth(ctx, "DOCK"); d.Total != 0 {
			t.Fatalf("after %s: DOCK's depth %+v", how, d)
		}
	}
}

// TestCheckPendingFindsMismatch: CheckPending, run after every suite case,
// reports a pending count that does not match its queue and a group count
// that does not match the groups; a group put twice is counted once.
func TestCheckPendingFindsMismatch(t *testing.T) {
	dsn := pgtest.DSN(t)
	s := mustOpenDSN(t, dsn)
	ctx := t.Context()
	if _, err := groups.NewLedger(s).Enqueue(ctx, queuedOp(groups.Name{Tenant: "SHIP", Project: "MOH", Group: "billing"}), queuepkg.Limits{}); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckPending(ctx); err != nil {
		t.Fatalf("CheckPending of a sound store: %v", err)
	}
	if _, err := adminConn(t, dsn).Exec(ctx, "UPDATE pending SET n = 2"); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckPending(ctx); err == nil || !strings.Contains(err.Error(), "SHIP/MOH has 1 operations queued but counts 2") {
		t.Fatalf("CheckPending after the count was changed: %v", err)
	}
	if _, err := adminConn(t, dsn).Exec(ctx, "UPDATE pending SET n = 1"); err != nil {
		t.Fatal(err)
	}
	ledger := groups.NewLedger(s)
	for _, name := range []string{"a", "b", "a"} { // a new, b new, a again: 2 groups
		if err := ledger.Update(ctx, "SHIP", func(tx groups.Tx) error {
			return tx.PutGroup(groups.Group{Name: groups.Name{Tenant: "SHIP", Project: "MOH", Group: name}, State: groups.Active})
		}); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := ledger.View(ctx, "SHIP", func(tx groups.Tx) error {
		var err error
		n, err = tx.CountGroups("MOH")
		return err
	}); err != nil || n != 2 {
		t.Fatalf("CountGroups after two groups put, one twice: %d, %v; want 2", n, err)
	}
	if err := s.CheckPending(ctx); err != nil {
		t.Fatalf("CheckPending with groups: %v", err)
	}
	if _, err := adminConn(t, dsn).Exec(ctx, "UPDATE group_versions SET n = 5"); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckPending(ctx); err == nil || !strings.Contains(err.Error(), "SHIP/MOH holds 2 groups but counts 5") {
		t.Fatalf("CheckPending after the group count was changed: %v", err)
	}
}
