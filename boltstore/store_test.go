package boltstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/groupgate/groupgate/boltstore"
	"github.com/groupgate/groupgate/boltstore/bolttest"
	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/groups/groupstest"
	"github.com/groupgate/groupgate/queue"
	"github.com/groupgate/groupgate/queue/queuetest"

	"github.com/groupgate/groupgate/webhooks/webhookstest"
)

// suiteStore is the conformance suites' newStore.
func suiteStore(t *testing.T) *boltstore.Store {
	t.Helper()
	return bolttest.MustOpen(t)
}

// suiteLedger is the queue conformance suite's newStore: the queue is the
// ledger over the bbolt store.
func suiteLedger(t *testing.T) queue.Store[groups.Effect] { return groups.NewLedger(suiteStore(t)) }

func TestQueueStore(t *testing.T) {
	queuetest.RunStoreTests(t, suiteLedger, groupstest.FailingEffect)
}

func TestQueueStoreConcurrency(t *testing.T) {
	queuetest.RunConcurrencyTests(t, suiteLedger, groupstest.FailingEffect)
}

func TestGroupsStore(t *testing.T) {
	groupstest.RunStoreTests(t, func(t *testing.T) groups.Store { return suiteStore(t) })
}

func TestGroupsStoreConcurrency(t *testing.T) {
	groupstest.RunConcurrencyTests(t, func(t *testing.T) groups.Store { return suiteStore(t) })
}

func TestOpenCreatesPrivateFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "var", "groupgate")
	path := filepath.Join(dir, "state.db")
	s := bolttest.MustOpenAt(t, path)
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if s.Path() != path {
		t.Errorf("Path() = %q, want %q", s.Path(), path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("file mode = %#o, want 0600", mode)
	}
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if mode := di.Mode().Perm(); mode != 0o700 {
		t.Errorf("directory mode = %#o, want 0700", mode)
	}
}

// readSchema returns the schema version stored in the closed file at path.
func readSchema(t *testing.T, path string) string {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v string
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("meta"))
		if b == nil {
			return errors.New("no meta bucket")
		}
		v = string(b.Get([]byte("schema")))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// writeSchema overwrites the schema version in the closed file at path.
func writeSchema(t *testing.T, path, version string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("meta"))
		if err != nil {
			return err
		}
		return b.Put([]byte("schema"), []byte(version))
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestSchemaVersionStored(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s := bolttest.MustOpenAt(t, path)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := readSchema(t, path), fmt.Sprint(boltstore.SchemaVersion); got != want {
		t.Fatalf("stored schema = %q, want %q", got, want)
	}
	// Reopening a file of this version works and keeps the version.
	s = bolttest.MustOpenAt(t, path)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := readSchema(t, path), fmt.Sprint(boltstore.SchemaVersion); got != want {
		t.Fatalf("stored schema after reopening = %q, want %q", got, want)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	for _, version := range []string{fmt.Sprint(boltstore.SchemaVersion + 1), "0", "garbage"} {
		t.Run(version, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.db")
			s := bolttest.MustOpenAt(t, path)
			op, err := groups.NewLedger(s).Enqueue(t.Context(), queue.Operation{ID: queue.NewID(), Tenant: "SHIP", Project: "MOH", Kind: "test.op"}, queue.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			writeSchema(t, path, version)

			s2, err := boltstore.Open(path, time.Second)
			if err == nil {
				s2.Close()
				t.Fatalf("Open of a schema %q file succeeded, want ErrSchema", version)
			}
			if !errors.Is(err, boltstore.ErrSchema) {
				t.Fatalf("Open error = %v, want ErrSchema", err)
			}
			// The refused file is left as it was, and unlocked.
			if got := readSchema(t, path); got != version {
				t.Fatalf("schema after refused Open = %q, want %q untouched", got, version)
			}
			writeSchema(t, path, fmt.Sprint(boltstore.SchemaVersion))
			s3 := bolttest.MustOpenAt(t, path)
			if _, err := s3.Operation(t.Context(), op.ID); err != nil {
				t.Fatalf("operation lost after a refused Open: %v", err)
			}
		})
	}
}

// TestOpenTimesOutWhileFileIsHeld opens a held file: a second process (here,
// a second handle) must not share it.
func TestOpenTimesOutWhileFileIsHeld(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	bolttest.MustOpenAt(t, path)
	s, err := boltstore.Open(path, 100*time.Millisecond)
	if err == nil {
		s.Close()
		t.Fatal("second Open of a held file succeeded")
	}
	if !errors.Is(err, bolt.ErrTimeout) {
		t.Errorf("second Open error = %v, want a timeout", err)
	}
}

func TestReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	ctx := t.Context()
	t0 := time.Date(2026, 3, 2, 9, 15, 0, 0, time.UTC)
	s := bolttest.MustOpenAt(t, path)

	active := groups.Name{Tenant: "SHIP", Project: "MOH", Group: "Billing"}
	creating := groups.Name{Tenant: "SHIP", Project: "MOH", Group: "ops"}
	mkCreate := func(n groups.Name) (groups.Group, queue.Operation) {
		op := queue.Operation{ID: queue.NewID(), Tenant: n.Tenant, Project: n.Project, Kind: groups.KindCreate, Target: n.String(), Payload: []byte(`{"x":1}`), CreatedAt: t0}
		return groups.Group{Name: n, Description: "d", State: groups.Creating, PendingOperation: op.ID, CreatedAt: t0}, op
	}
	g, op := mkCreate(active)
	done, err := groups.NewLedger(s).CreatePending(ctx, g, op, groups.Limits{Groups: 10})
	if err != nil {
		t.Fatal(err)
	}
	done.State, done.Result, done.FinishedAt = queue.Succeeded, []byte(`{"upstreamId":"g-1"}`), t0.Add(time.Second)
	if err := groups.NewLedger(s).Complete(ctx, done, []groups.Effect{groups.Created{Name: active, UpstreamID: "g-1", At: t0}}); err != nil {
		t.Fatal(err)
	}
	g, op = mkCreate(creating)
	running, err := groups.NewLedger(s).CreatePending(ctx, g, op, groups.Limits{Groups: 10})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateOperation(ctx, running.ID, func(o *queue.Operation) error {
		o.State, o.Attempts = queue.Running, 1
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	queued, err := groups.NewLedger(s).Enqueue(ctx, queue.Operation{ID: queue.NewID(), Tenant: "SHIP", Project: "MOH", Kind: "test.op", CreatedAt: t0}, queue.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = bolttest.MustOpenAt(t, path)
	if got, err := s.Operation(ctx, done.ID); err != nil || got.State != queue.Succeeded || string(got.Result) != `{"upstreamId":"g-1"}` {
		t.Fatalf("completed operation after reopen: %+v, %v", got, err)
	}
	if got, err := groups.NewLedger(s).Head(ctx, "SHIP"); err != nil || got.ID != running.ID || got.State != queue.Running || got.Attempts != 1 || string(got.Payload) != `{"x":1}` {
		t.Fatalf("Head after reopen: %+v, %v; want the running operation", got, err)
	}
	if d, err := s.Depth(ctx, "SHIP"); err != nil || d.Total != 2 {
		t.Fatalf("Depth after reopen = %+v, %v; want 2", d, err)
	}
	if gr, err := s.Group(ctx, active); err != nil || gr.State != groups.Active || gr.UpstreamID != "g-1" {
		t.Fatalf("active group after reopen: %+v, %v", gr, err)
	}
	if gr, err := s.Group(ctx, creating); err != nil || gr.State != groups.Creating || gr.PendingOperation != running.ID {
		t.Fatalf("creating group after reopen: %+v, %v", gr, err)
	}
	if n, err := groups.NewLedger(s).RequeueRunning(ctx, "SHIP", t0); err != nil || n != 1 {
		t.Fatalf("RequeueRunning after reopen = %d, %v; want 1", n, err)
	}
	// Sequence numbers keep increasing across a reopen.
	next, err := groups.NewLedger(s).Enqueue(ctx, queue.Operation{ID: queue.NewID(), Tenant: "SHIP", Project: "MOH", Kind: "test.op"}, queue.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if next.Seq <= queued.Seq {
		t.Fatalf("Seq after reopen = %d, not after %d", next.Seq, queued.Seq)
	}
	if err := s.Check(); err != nil {
		t.Fatalf("Check: %v", err)
	}
}

// halfEffect writes a group and then fails.
type halfEffect struct{ Name groups.Name }

func (e halfEffect) Apply(tx groups.Tx) error {
	if err := tx.PutGroup(groups.Group{Name: e.Name, State: groups.Active}); err != nil {
		return err
	}
	return errors.New("half done")
}

func TestFailingEffectWritesNothing(t *testing.T) {
	s := bolttest.MustOpen(t)
	ctx := t.Context()
	n := groups.Name{Tenant: "SHIP", Project: "MOH", Group: "billing"}
	op := queue.Operation{ID: queue.NewID(), Tenant: "SHIP", Project: "MOH", Kind: groups.KindCreate, Target: n.String()}
	op, err := groups.NewLedger(s).CreatePending(ctx, groups.Group{Name: n, State: groups.Creating, PendingOperation: op.ID}, op, groups.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	before := dump(t, s)

	other := groups.Name{Tenant: "SHIP", Project: "MOH", Group: "other"}
	for _, effects := range [][]groups.Effect{
		{halfEffect{other}},
		{groups.Created{Name: n, UpstreamID: "g-1"}, halfEffect{other}},
		{groups.CreateFailed{Name: n}, halfEffect{n}},
		{groups.Created{Name: n, UpstreamID: "g-1"}, nil},
	} {
		done := op
		done.State = queue.Succeeded
		err := groups.NewLedger(s).Complete(ctx, done, effects)
		if err == nil {
			t.Fatalf("Complete with effects %#v succeeded, want an error", effects)
		}
		if after := dump(t, s); after != before {
			t.Fatalf("Complete with effects %#v wrote to the file:\nbefore %s\nafter  %s", effects, before, after)
		}
	}
}

// dump renders the tenant SHIP's queue, its MOH groups and its head
// operation, for before/after comparisons.
func dump(t *testing.T, s *boltstore.Store) string {
	t.Helper()
	var out string
	ctx := t.Context()
	head, err := groups.NewLedger(s).Head(ctx, "SHIP")
	out += fmt.Sprintf("head=%s/%s/%d/%v ", head.ID, head.State, head.Seq, err)
	depth, err := s.Depth(ctx, "SHIP")
	out += fmt.Sprintf("depth=%+v/%v ", depth, err)
	gs, err := s.Groups(ctx, "SHIP", "MOH")
	out += fmt.Sprintf("groups=%+v/%v ", gs, err)
	if head.ID != "" {
		op, err := s.Operation(ctx, head.ID)
		out += fmt.Sprintf("op=%+v/%v", op, err)
	}
	return out
}

// TestCloseDuringWrites closes the store while writers are queued for the
// committer: each write either lands (and survives a reopen) or fails with
// ErrClosed; none hangs or is lost after being acknowledged.
func TestCloseDuringWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s := bolttest.MustOpenAt(t, path)
	const n = 40
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		ids[i] = queue.NewID()
		wg.Go(func() {
			_, errs[i] = groups.NewLedger(s).Enqueue(context.Background(), queue.Operation{ID: ids[i], Tenant: "SHIP", Project: "MOH", Kind: "test.op"}, queue.Limits{})
		})
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("writers still blocked after Close")
	}
	if _, err := groups.NewLedger(s).Enqueue(t.Context(), queue.Operation{ID: queue.NewID(), Tenant: "SHIP", Project: "MOH"}, queue.Limits{}); !errors.Is(err, boltstore.ErrClosed) {
		t.Fatalf("Enqueue after Close: error = %v, want ErrClosed", err)
	}

	s = bolttest.MustOpenAt(t, path)
	landed := 0
	for i, id := range ids {
		_, err := s.Operation(t.Context(), id)
		switch {
		case errs[i] == nil && err != nil:
			t.Errorf("acknowledged operation %s lost: %v", id, err)
		case errs[i] == nil:
			landed++
		case !errors.Is(errs[i], boltstore.ErrClosed):
			t.Errorf("Enqueue during Close: error = %v, want nil or ErrClosed", errs[i])
		case err == nil:
			t.Errorf("operation %s refused with ErrClosed was written anyway", id)
		}
	}
	t.Logf("%d of %d writes landed before Close", landed, n)
}

// TestBatchedWriterFailureIsolated runs failing and succeeding writers
// together, so that group commit puts them in shared transactions: each
// gets its own result, and a failure undoes only its own writes.
func TestBatchedWriterFailureIsolated(t *testing.T) {
	s := bolttest.MustOpen(t)
	ctx := t.Context()
	target, err := groups.NewLedger(s).Enqueue(ctx, queue.Operation{ID: queue.NewID(), Tenant: "SHIP", Project: "MOH", Kind: "test.op"}, queue.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	const n = 30
	var (
		wg       sync.WaitGroup
		enqueued = make([]string, n)
		enqErr   = make([]error, n)
		updErr   = make([]error, n)
		good     atomic.Int64
	)
	for i := range n {
		wg.Go(func() {
			op, err := groups.NewLedger(s).Enqueue(context.Background(), queue.Operation{ID: queue.NewID(), Tenant: "SHIP", Project: "MOH", Kind: "test.op"}, queue.Limits{})
			enqueued[i], enqErr[i] = op.ID, err
		})
		wg.Go(func() {
			_, updErr[i] = s.UpdateOperation(context.Background(), target.ID, func(o *queue.Operation) error {
				if i%2 == 0 {
					o.LastError = "must not be stored"
					return boom
				}
				o.Failures++ // counted below: each successful update exactly once
				return nil
			})
			if updErr[i] == nil {
				good.Add(1)
			}
		})
	}
	wg.Wait()
	for i := range n {
		if enqErr[i] != nil {
			t.Errorf("Enqueue #%d: %v", i, enqErr[i])
		} else if _, err := s.Operation(ctx, enqueued[i]); err != nil {
			t.Errorf("enqueued #%d lost: %v", i, err)
		}
		if i%2 == 0 && !errors.Is(updErr[i], boom) {
			t.Errorf("failing update #%d: error = %v, want its own error", i, updErr[i])
		}
		if i%2 == 1 && updErr[i] != nil {
			t.Errorf("update #%d: %v", i, updErr[i])
		}
	}
	got, err := s.Operation(ctx, target.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.LastError != "" || int64(got.Failures) != good.Load() {
		t.Fatalf("after %d good updates: Failures %d, LastError %q; want %d, empty", good.Load(), got.Failures, got.LastError, good.Load())
	}
	if d, err := s.Depth(ctx, "SHIP"); err != nil || d.Total != n+1 {
		t.Fatalf("Depth = %+v, %v; want %d", d, err, n+1)
	}
}

// TestOldGroupRecordDecodes reads a group stored before the mirror kept
// revisions, sync times and members: the new fields read as zero values,
// except the revision, which reads as 1 so that If-Match has something to
// match; the group then takes updates and members like any other.
func TestOldGroupRecordDecodes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	ctx := t.Context()
	s := bolttest.MustOpenAt(t, path)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	const old = `{"project":"MOH","group":"Billing","description":"old text","state":"active","upstreamId":"g-1",` +
		`"createdAt":"2025-01-02T03:04:05Z","updatedAt":"2025-01-02T03:04:06Z"}`
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.Bucket([]byte("groups")).CreateBucketIfNotExists([]byte("SHIP"))
		if err != nil {
			return err
		}
		return b.Put([]byte("MOH\x00billing"), []byte(old))
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}

	s = bolttest.MustOpenAt(t, path)
	n := groups.Name{Tenant: "SHIP", Project: "MOH", Group: "Billing"}
	g, err := s.Group(ctx, n)
	if err != nil {
		t.Fatalf("Group: %v", err)
	}
	want := groups.Group{
		Name: n, Description: "old text", State: groups.Active, UpstreamID: "g-1", Revision: 1,
		CreatedAt: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), UpdatedAt: time.Date(2025, 1, 2, 3, 4, 6, 0, time.UTC),
	}
	if g != want {
		t.Fatalf("old record read as\n%+v\nwant %+v", g, want)
	}
	if gs, more, err := s.ListGroups(ctx, "SHIP", groups.PageQuery{}); err != nil || more || len(gs) != 1 || gs[0] != want {
		t.Fatalf("ListGroups = %+v, %v, %v", gs, more, err)
	}
	if us, _, err := s.ListMembers(ctx, n, groups.PageQuery{}); err != nil || len(us) != 0 {
		t.Fatalf("ListMembers = %+v, %v; want none", us, err)
	}
	if at, err := s.GroupsSyncedAt(ctx, "SHIP"); err != nil || !at.IsZero() {
		t.Fatalf("GroupsSyncedAt = %v, %v; want zero", at, err)
	}

	op := queue.Operation{ID: queue.NewID(), Tenant: "SHIP", Project: "MOH", Kind: groups.KindUpdate, Target: n.String()}
	stored, _, err := groups.NewLedger(s).UpdatePending(ctx, n, "new text", 1, op, queue.Limits{})
	if err != nil || stored.Revision != 2 || stored.PendingUpdate != op.ID {
		t.Fatalf("UpdatePending(If-Match 1) = %+v, %v; want revision 2", stored, err)
	}
	op.State = queue.Succeeded
	ann := groups.User{ID: "u-ann", Email: "ann@example.com"}
	if err := groups.NewLedger(s).Complete(ctx, op, []groups.Effect{groups.Updated{Name: n, Operation: op.ID}, groups.MembersAdded{Name: n, Users: []groups.User{ann}}}); err != nil {
		t.Fatal(err)
	}
	if g, err := s.Group(ctx, n); err != nil || g.MemberCount != 1 || g.MembersVersion != 1 || g.PendingUpdate != "" || g.Revision != 2 {
		t.Fatalf("after Updated and MembersAdded: %+v, %v", g, err)
	}
}

// TestMirrorSurvivesReopen checks that revisions, sync times, members and
// known users are in the file, not only in memory.
func TestMirrorSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	ctx := t.Context()
	at := time.Date(2026, 3, 2, 9, 15, 0, 0, time.UTC)
	s := bolttest.MustOpenAt(t, path)
	n := groups.Name{Tenant: "SHIP", Project: "MOH", Group: "Billing"}
	ann := groups.User{ID: "u-ann", Email: "Ann@example.com", DisplayName: "Ann"}
	bob := groups.User{ID: "u-bob", Email: "bob@example.com"}
	applied, err := groups.NewLedger(s).SyncGroups(ctx, "SHIP", []groups.GroupChange{{Kind: groups.GroupAppeared, Group: groups.Group{Name: n, Description: "d", UpstreamID: "g-1"}}}, nil, at)
	if err != nil || len(applied) != 1 {
		t.Fatalf("SyncGroups = %+v, %v", applied, err)
	}
	if _, _, ok, err := groups.NewLedger(s).SyncMembers(ctx, n, "g-1", 0, []groups.User{ann, bob}, at); err != nil || !ok {
		t.Fatalf("SyncMembers = %v, %v", ok, err)
	}
	before, err := s.Group(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = bolttest.MustOpenAt(t, path)
	if g, err := s.Group(ctx, n); err != nil || g != before || g.MemberCount != 2 || g.MembersVersion != 1 || g.Revision != 1 || !g.SyncedAt.Equal(at) || !g.MembersSyncedAt.Equal(at) {
		t.Fatalf("group after reopen = %+v, %v\nwas %+v", g, err, before)
	}
	if us, _, err := s.ListMembers(ctx, n, groups.PageQuery{}); err != nil || len(us) != 2 || us[0] != ann || us[1] != bob {
		t.Fatalf("members after reopen = %+v, %v", us, err)
	}
	if got, err := s.KnownUsers(ctx, "SHIP", []string{"ann@example.com", "u-bob"}); err != nil || got["ann@example.com"] != ann || got["u-bob"] != bob {
		t.Fatalf("known users after reopen = %+v, %v", got, err)
	}
	if got, err := s.GroupsSyncedAt(ctx, "SHIP"); err != nil || !got.Equal(at) {
		t.Fatalf("GroupsSyncedAt after reopen = %v, %v", got, err)
	}
}

// A file written before pending counts were kept gets them from its
// queues when opened, and the queue limits hold on it.
func TestPendingCountsRebuiltOnOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	s, err := boltstore.Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := groups.NewLedger(s).Enqueue(t.Context(), queue.Operation{ID: queue.NewID(), Tenant: "SHIP", Project: "MOH", Kind: "test.op", Target: fmt.Sprint(i)}, queue.Limits{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Remove the counts, as a file from before them would be.
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte("pending")) }); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = boltstore.Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if d, err := s.Depth(t.Context(), "SHIP"); err != nil || d.Total != 3 || d.Projects["MOH"] != 3 {
		t.Fatalf("Depth after reopen = %+v, %v; want 3 pending in MOH", d, err)
	}
	_, err = groups.NewLedger(s).Enqueue(t.Context(), queue.Operation{ID: queue.NewID(), Tenant: "SHIP", Project: "MOH", Kind: "test.op"}, queue.Limits{Project: 3})
	if !errors.Is(err, queue.ErrQueueFull) {
		t.Fatalf("Enqueue past the project limit: %v, want ErrQueueFull", err)
	}
	if err := s.Check(); err != nil {
		t.Fatalf("Check: %v", err)
	}
}

func TestWebhooksStore(t *testing.T) {
	webhookstest.RunStoreTests(t, func(t *testing.T) webhookstest.Store { return suiteStore(t) })
}
