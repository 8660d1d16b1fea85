package boltstore_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/groupgate/groupgate/audit"
	"github.com/groupgate/groupgate/audit/audittest"
	"github.com/groupgate/groupgate/boltstore"
	"github.com/groupgate/groupgate/boltstore/bolttest"
)

func TestAuditStore(t *testing.T) {
	audittest.RunStoreTests(t, func(t *testing.T) audit.Store { return bolttest.MustOpen(t) })
}

func TestAuditStoreConcurrency(t *testing.T) {
	audittest.RunConcurrencyTests(t, func(t *testing.T) audit.Store { return bolttest.MustOpen(t) })
}

var auditT0 = time.Date(2026, 3, 2, 9, 15, 0, 0, time.UTC)

func auditEntry(i int, tenant string) audit.Entry {
	at := auditT0.Add(time.Duration(i) * time.Millisecond)
	return audit.Entry{
		ID: audit.MakeID(at, 0), Time: at, Actor: "key:0123abcd", Role: "project", Tenant: tenant,
		Action: "group.create", Target: fmt.Sprint(i), Outcome: audit.Accepted, Status: 202,
	}
}

// A query whose filter matches nothing in a long stretch of the log stops
// after a bounded scan with a position to continue from, and paging on still
// finds every match, once.
func TestAuditQueryScanIsBounded(t *testing.T) {
	s := bolttest.MustOpen(t)
	const n = 10_000
	var es []audit.Entry
	for i := range n {
		e := auditEntry(i, "SHIP")
		if i%4000 == 1 {
			e.Actor = "key:rare"
		}
		es = append(es, e)
	}
	for chunk := range slices.Chunk(es, 2500) {
		if err := s.AppendAudit(t.Context(), chunk...); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []audit.Filter{{Actor: "key:rare"}, {Tenant: "SHIP", Actor: "key:rare"}} {
		var got []string
		before, calls, short := "", 0, 0
		for {
			page, next, err := s.QueryAudit(t.Context(), f, before, 10)
			if err != nil {
				t.Fatal(err)
			}
			calls++
			if next != "" && len(page) < 10 {
				short++
			}
			for _, e := range page {
				got = append(got, e.Target)
			}
			if next == "" {
				break
			}
			before = next
		}
		if want := []string{"8001", "4001", "1"}; !slices.Equal(got, want) {
			t.Errorf("%+v: got %v, want %v", f, got, want)
		}
		if short == 0 || calls < n/4096 {
			t.Errorf("%+v: %d calls, %d short pages; want the scan bounded", f, calls, short)
		}
	}
}

// The tenant index keeps a tenant's query from walking other tenants'
// entries: a small tenant among many entries answers in one call.
func TestAuditTenantQueryUsesIndex(t *testing.T) {
	s := bolttest.MustOpen(t)
	var es []audit.Entry
	for i := range 9000 {
		tenant := "BIG"
		if i == 5 || i == 8990 {
			tenant = "SMALL"
		}
		es = append(es, auditEntry(i, tenant))
	}
	if err := s.AppendAudit(t.Context(), es...); err != nil {
		t.Fatal(err)
	}
	page, next, err := s.QueryAudit(t.Context(), audit.Filter{Tenant: "SMALL"}, "", 10)
	if err != nil || next != "" || len(page) != 2 {
		t.Fatalf("SMALL: %d entries, next %q, %v; want both in one call", len(page), next, err)
	}
}

// Purging everything of a tenant drops its index bucket, and the file stays
// consistent after purges spanning several transactions.
func TestAuditPurgeDropsEmptyTenantIndex(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := boltstore.Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var es []audit.Entry
	for i := range 5000 {
		es = append(es, auditEntry(i, []string{"OLD", "KEEP"}[min(i/4000, 1)]))
	}
	if err := s.AppendAudit(t.Context(), es...); err != nil {
		t.Fatal(err)
	}
	n, err := s.PurgeAudit(t.Context(), auditT0.Add(4500*time.Millisecond))
	if err != nil || n != 4500 {
		t.Fatalf("PurgeAudit = %d, %v; want 4500", n, err)
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		root := tx.Bucket([]byte("audit_tenant"))
		if root == nil {
			return fmt.Errorf("audit_tenant bucket missing")
		}
		if root.Bucket([]byte("OLD")) != nil {
			return fmt.Errorf("index of the purged tenant OLD is still there")
		}
		if n := root.Bucket([]byte("KEEP")).Stats().KeyN; n != 500 {
			return fmt.Errorf("KEEP index holds %d keys, want 500", n)
		}
		if n := tx.Bucket([]byte("audit")).Stats().KeyN; n != 500 {
			return fmt.Errorf("audit bucket holds %d keys, want 500", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Entries survive a restart, and a store that never wrote an audit entry
// (a file from before the audit log) answers queries and purges.
func TestAuditReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := boltstore.Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if page, next, err := s.QueryAudit(t.Context(), audit.Filter{Tenant: "SHIP"}, "", 10); err != nil || len(page) != 0 || next != "" {
		t.Fatalf("query before any entry: %v, %q, %v", page, next, err)
	}
	if n, err := s.PurgeAudit(t.Context(), auditT0); err != nil || n != 0 {
		t.Fatalf("purge before any entry: %d, %v", n, err)
	}
	l := audit.NewLog(s, func() time.Time { return auditT0 }, nil)
	l.Record(t.Context(), audit.Entry{Actor: "key:0123abcd", Tenant: "SHIP", Action: "key.revoke", Outcome: audit.Succeeded, Status: 204, Target: "0123abcd"})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := boltstore.Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	page, err := audit.NewLog(s2, nil, nil).Query(t.Context(), audit.Query{Filter: audit.Filter{Tenant: "SHIP"}})
	if err != nil || len(page.Entries) != 1 || page.Entries[0].Action != "key.revoke" || !page.Entries[0].Time.Equal(auditT0) {
		t.Fatalf("after reopening: %+v, %v", page, err)
	}
}
