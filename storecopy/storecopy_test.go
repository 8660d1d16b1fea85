package storecopy_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	bolt "go.etcd.io/bbolt"

	"github.com/groupgate/groupgate/audit"
	"github.com/groupgate/groupgate/boltstore"
	"github.com/groupgate/groupgate/boltstore/bolttest"
	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/internal/pgtest"
	"github.com/groupgate/groupgate/internal/testkit"
	"github.com/groupgate/groupgate/pgstore"
	"github.com/groupgate/groupgate/queue"
	"github.com/groupgate/groupgate/secretbox"
	"github.com/groupgate/groupgate/storecopy"
	"github.com/groupgate/groupgate/tenants"
	"github.com/groupgate/groupgate/webhooks"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// scheduler and quotas are what groups.Service needs of the rest of the
// gateway: no dispatcher runs, no limit binds.
type scheduler struct{}

func (scheduler) Wake(string)                                                   {}
func (scheduler) Notify(string)                                                 {}
func (scheduler) Limits(string) queue.Limits                                    { return queue.Limits{} }
func (scheduler) Interval(string) time.Duration                                 { return time.Second }
func (scheduler) GroupLimits(context.Context, string, string) (int, int, error) { return 0, 0, nil }

// store is the part of both backends the test writes through.
type store interface {
	storecopy.Store
	groups.Store
	audit.Store
}

func service(st groups.Store, clk *testkit.Clock) *groups.Service {
	return groups.NewService(groups.ServiceConfig{Store: st, Queue: scheduler{}, Quotas: scheduler{}, Now: clk.Now})
}

// filled is what fill wrote that the test replays against a copy.
type filled struct {
	req   groups.Request
	name  groups.Name
	first queue.Operation
}

// fill writes every kind of record through the domain (tenants.Admin,
// groups.Service and Ledger, audit.Log) and the stores' own writes where
// no domain type writes them outside a running gateway (webhook records).
// Times are whole microseconds: PostgreSQL keeps no finer ones.
func fill(t *testing.T, st *boltstore.Store, clk *testkit.Clock) filled {
	t.Helper()
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	box, err := secretbox.New([]byte(strings.Repeat("ab", 32)))
	must(err)
	admin := tenants.NewAdmin(st, box, clk.Now)
	for _, name := range []string{"SHIP", "PORT"} {
		_, err := admin.CreateTenant(ctx, tenants.TenantSpec{Name: name,
			ClientSecret:  &tenants.CredentialInput{Value: "client-secret-" + name},
			WebhookSecret: &tenants.CredentialInput{Value: "webhook-secret-0123456789-" + name}})
		must(err)
		clk.Advance(1500 * time.Microsecond)
	}
	for _, p := range []string{"MOH", "MOE"} {
		_, err := admin.CreateProject(ctx, "SHIP", tenants.ProjectSpec{Name: p})
		must(err)
	}
	_, _, err = admin.IssueKey(ctx, "key:op", tenants.KeySpec{Name: "ci", Role: tenants.RoleProject, Tenant: "SHIP", Project: "MOH"})
	must(err)
	_, old, err := admin.IssueKey(ctx, "key:op", tenants.KeySpec{Name: "old", Role: tenants.RoleTenantAdmin, Tenant: "SHIP"})
	must(err)
	clk.Advance(time.Second)
	_, err = admin.RevokeKey(ctx, old.ID)
	must(err)

	svc, ledger := service(st, clk), groups.NewLedger(st)
	var f filled
	for i, g := range []struct{ project, group string }{{"MOH", "alpha"}, {"MOH", "beta"}, {"MOE", "gamma"}, {"MOE", "delta"}} {
		name, err := svc.Name("SHIP", g.project, g.group)
		must(err)
		req := groups.Request{Actor: "key:ci", IdempotencyKey: "idem-" + g.group, Fingerprint: "create " + g.group}
		op, replayed, err := svc.Create(ctx, req, name, "group "+g.group)
		must(err)
		if replayed {
			t.Fatal("first create replayed")
		}
		if i == 0 {
			f = filled{req: req, name: name, first: op}
		}
		clk.Advance(2 * time.Millisecond)
	}
	// alpha's operation is running; delta's is cancelled (settled).
	_, err = ledger.UpdateOperation(ctx, f.first.ID, func(op *queue.Operation) error {
		op.State, op.Attempts, op.StartedAt = queue.Running, 1, clk.Now()
		return nil
	})
	must(err)
	ids, err := st.PendingIDs(ctx, "SHIP", "MOE", 0)
	must(err)
	last, err := st.Operation(ctx, ids[len(ids)-1])
	must(err)
	_, err = svc.Cancel(ctx, last)
	must(err)

	// The mirror: a group read from TechPass, its members and owners.
	existing := groups.Name{Tenant: "SHIP", Project: "MOH", Group: "Existing"}
	_, err = ledger.SyncGroups(ctx, "SHIP", []groups.GroupChange{{Kind: groups.GroupAppeared, Group: groups.Group{
		Name: existing, Description: "read from TechPass", State: groups.Active, UpstreamID: "up-1"}}}, nil, clk.Now())
	must(err)
	g, err := st.Group(ctx, existing)
	must(err)
	users := []groups.User{{ID: "u-1", Email: "Ann@Example.com", DisplayName: "Ann"}, {ID: "u-2", Email: "bob@example.com"}}
	_, _, ok, err := ledger.SyncMembers(ctx, existing, "up-1", g.MembersVersion, users, clk.Now())
	must(err)
	if !ok {
		t.Fatal("members not synced")
	}
	ok, err = ledger.SyncOwners(ctx, existing, "up-1", users[:1])
	must(err)
	if !ok {
		t.Fatal("owners not synced")
	}

	// Webhook records: a deleted-user mark, delivery records (one still
	// pending), a notice.
	must(st.Update(ctx, "SHIP", func(tx groups.Tx) error {
		return tx.PutDeletedUser("Gone@Example.com", groups.DeletedUser{Email: "gone@example.com", DeletedAt: clk.Now(), Expires: clk.Now().Add(time.Hour)})
	}))
	must(st.UpdateDeliveries(ctx, "SHIP", func(tx webhooks.Tx) error {
		if err := tx.PutDelivery(sha256.Sum256([]byte("one")), webhooks.Record{Expires: clk.Now().Add(time.Hour)}); err != nil {
			return err
		}
		return tx.PutDelivery(sha256.Sum256([]byte("two")), webhooks.Record{Expires: clk.Now().Add(2 * time.Hour),
			Pending: &webhooks.Applied{Left: []groups.Name{existing}, User: users[1], Known: true}})
	}))
	must(st.PutWebhookNotice(ctx, "SHIP", "deleted", "the application was deleted", clk.Now().Add(time.Hour)))

	// The audit log: entries with and without a tenant.
	log := audit.NewLog(st, clk.Now, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for i := range 7 {
		e := audit.Entry{Actor: "key:ci", Role: "project", Tenant: "SHIP", Project: "MOH", Action: "group.create",
			Target: fmt.Sprintf("SHIP:MOH:g%d", i), Outcome: audit.Accepted, Status: 202, RequestID: fmt.Sprintf("r%d", i)}
		if i%3 == 0 {
			e.Tenant, e.Project, e.Action = "", "", "tenant.create"
		}
		log.Record(ctx, e)
		clk.Advance(time.Millisecond)
	}
	if log.Failures() != 0 {
		t.Fatal("audit entries not recorded")
	}
	return f
}

func export(t *testing.T, st storecopy.Exporter) *storecopy.Dump {
	t.Helper()
	d, err := st.Export(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// sameDump fails t unless got holds exactly want's records, naming the
// first record that differs.
func sameDump(t *testing.T, what string, want, got *storecopy.Dump) {
	t.Helper()
	w, g := reflect.ValueOf(want).Elem(), reflect.ValueOf(got).Elem()
	for i := range w.NumField() {
		wf, gf := w.Field(i), g.Field(i)
		if reflect.DeepEqual(wf.Interface(), gf.Interface()) {
			continue
		}
		name := w.Type().Field(i).Name
		if wf.Len() != gf.Len() {
			t.Errorf("%s: %s: %d records, want %d", what, name, gf.Len(), wf.Len())
			continue
		}
		for j := range wf.Len() {
			if !reflect.DeepEqual(wf.Index(j).Interface(), gf.Index(j).Interface()) {
				t.Errorf("%s: %s[%d]:\n got %+v\nwant %+v", what, name, j, gf.Index(j).Interface(), wf.Index(j).Interface())
				break
			}
		}
	}
}

func openPG(t *testing.T) *pgstore.Store {
	t.Helper()
	st, err := pgstore.Open(context.Background(), pgstore.Config{DSN: pgtest.DSN(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return st
}

// auditPages pages through the whole audit log, two entries a page, and
// returns the ids and cursors it saw.
func auditPages(t *testing.T, st audit.Store, tenant string) []string {
	t.Helper()
	log := audit.NewLog(st, time.Now, slog.New(slog.NewTextHandler(io.Discard, nil)))
	var seen []string
	q := audit.Query{Filter: audit.Filter{Tenant: tenant}, Limit: 2}
	for range 100 {
		p, err := log.Query(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Entries {
			seen = append(seen, e.ID)
		}
		seen = append(seen, "next="+p.Next)
		if p.Next == "" {
			return seen
		}
		q.Cursor = p.Next
	}
	t.Fatal("audit pages do not end")
	return nil
}

func headIDs(t *testing.T, st groups.Store) []string {
	t.Helper()
	heads, err := st.Heads(context.Background(), "SHIP")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, h := range heads {
		out = append(out, fmt.Sprintf("%s/%s seq %d %s", h.Project, h.ID, h.Seq, h.State))
	}
	return out
}

// TestCopyBoltPostgresBolt copies a store filled through the domain from
// bbolt to PostgreSQL and on to a fresh bbolt file: every record arrives
// as it was, and the copies behave as the original.
func TestCopyBoltPostgresBolt(t *testing.T) {
	ctx := context.Background()
	clk := testkit.NewClock(time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC))
	orig := bolttest.MustOpen(t)
	f := fill(t, orig, clk)
	want := export(t, orig)
	for _, c := range want.Counts() {
		if c.N == 0 {
			t.Errorf("the fixture wrote no %s: the copy of that kind is untested", c.Kind)
		}
	}

	pg := openPG(t)
	counts, err := storecopy.Copy(ctx, orig, pg)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(counts, want.Counts()) {
		t.Errorf("Copy counted %v, the source holds %v", counts, want.Counts())
	}
	sameDump(t, "bbolt -> PostgreSQL", want, export(t, pg))

	back := bolttest.MustOpenAt(t, filepath.Join(t.TempDir(), "back.db"))
	if _, err := storecopy.Copy(ctx, pg, back); err != nil {
		t.Fatal(err)
	}
	sameDump(t, "PostgreSQL -> bbolt", want, export(t, back))
	if err := back.Check(); err != nil {
		t.Errorf("the copied file: %v", err)
	}

	wantHeads := headIDs(t, orig)
	wantAudit := auditPages(t, orig, "")
	wantTenantAudit := auditPages(t, orig, "SHIP")
	for _, c := range []struct {
		name string
		st   store
	}{{"PostgreSQL", pg}, {"bbolt", back}} {
		// The queue's order is the same.
		if got := headIDs(t, c.st); !reflect.DeepEqual(got, wantHeads) {
			t.Errorf("%s: heads %v, want %v", c.name, got, wantHeads)
		}
		// The audit log pages the same, cursors and all.
		if got := auditPages(t, c.st, ""); !reflect.DeepEqual(got, wantAudit) {
			t.Errorf("%s: audit pages %v, want %v", c.name, got, wantAudit)
		}
		if got := auditPages(t, c.st, "SHIP"); !reflect.DeepEqual(got, wantTenantAudit) {
			t.Errorf("%s: audit pages of SHIP %v, want %v", c.name, got, wantTenantAudit)
		}
		svc := service(c.st, clk)
		// An idempotent replay returns the original operation.
		op, replayed, err := svc.Create(ctx, f.req, f.name, "group alpha")
		if err != nil || !replayed || op.ID != f.first.ID {
			t.Errorf("%s: replay gave %s replayed=%v, %v; want %s replayed", c.name, op.ID, replayed, err, f.first.ID)
		}
		// A reuse of the key for another request is refused, as before.
		other := f.req
		other.Fingerprint = "something else"
		if _, _, err := svc.Create(ctx, other, f.name, "group alpha"); !errors.Is(err, queue.ErrIdempotencyMismatch) {
			t.Errorf("%s: the key reused for another request: %v", c.name, err)
		}
		// A new operation takes the next seq of the tenant's queue.
		name, _ := svc.Name("SHIP", "MOE", "epsilon")
		op, _, err = svc.Create(ctx, groups.Request{Actor: "key:ci"}, name, "new")
		if err != nil {
			t.Fatal(err)
		}
		var maxSeq uint64
		for _, o := range want.Operations {
			maxSeq = max(maxSeq, o.Seq)
		}
		if op.Seq != maxSeq+1 {
			t.Errorf("%s: a new operation has seq %d, want %d", c.name, op.Seq, maxSeq+1)
		}
	}
}

// TestCopyRefusesNonEmptyTarget: a target that holds anything is refused
// and left as it was, in both backends.
func TestCopyRefusesNonEmptyTarget(t *testing.T) {
	ctx := context.Background()
	clk := testkit.NewClock(time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC))
	src := bolttest.MustOpen(t)
	fill(t, src, clk)

	target := bolttest.MustOpenAt(t, filepath.Join(t.TempDir(), "target.db"))
	if _, err := tenants.NewAdmin(target, nil, clk.Now).CreateTenant(ctx, tenants.TenantSpec{Name: "OTHER"}); err != nil {
		t.Fatal(err)
	}
	pg := openPG(t)
	if err := pg.AppendAudit(ctx, audit.Entry{ID: audit.MakeID(clk.Now(), 1), Time: clk.Now(), Actor: "system", Action: "x", Outcome: audit.Succeeded}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		st   storecopy.Store
	}{{"bbolt", target}, {"PostgreSQL", pg}} {
		before := export(t, c.st)
		if _, err := storecopy.Copy(ctx, src, c.st); !errors.Is(err, storecopy.ErrNotEmpty) {
			t.Errorf("%s: copy into a non-empty store: %v, want ErrNotEmpty", c.name, err)
		}
		sameDump(t, c.name+" after a refused copy", before, export(t, c.st))
	}
}

// TestUnknownRecordsRefused: a bucket or table that a copy would not read
// (one added to a layout without teaching export.go) fails the export,
// rather than being left out without a word.
func TestUnknownRecordsRefused(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	st, err := boltstore.Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Export(ctx); err != nil {
		t.Fatalf("a fresh file: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("newthing")); return err }); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	st = bolttest.MustOpenAt(t, path)
	if _, err := st.Export(ctx); err == nil || !strings.Contains(err.Error(), `bucket "newthing" is not copied`) {
		t.Errorf("bbolt with an unknown bucket: %v", err)
	}

	dsn := pgtest.DSN(t)
	pg, err := pgstore.Open(ctx, pgstore.Config{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	if _, err := pg.Export(ctx); err != nil {
		t.Fatalf("a fresh database: %v", err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE TABLE newthing (id text)"); err != nil {
		t.Fatal(err)
	}
	if _, err := pg.Export(ctx); err == nil || !strings.Contains(err.Error(), "table newthing is neither copied nor known") {
		t.Errorf("PostgreSQL with an unknown table: %v", err)
	}
}
