package boltstore_test

import (
	"slices"
	"testing"

	"github.com/groupgate/groupgate/boltstore/bolttest"
	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/queue"
)

// TestPendingIDs lists a tenant's pending operations in the order they
// were accepted, across projects or of one, and drops finished ones.
func TestPendingIDs(t *testing.T) {
	s := bolttest.MustOpenAt(t, t.TempDir()+"/state.db")
	ctx := t.Context()
	var ids []string
	for _, p := range []string{"MOH", "MOE", "MOH", "MOE"} {
		op, err := groups.NewLedger(s).Enqueue(ctx, queue.Operation{ID: queue.NewID(), Tenant: "SHIP", Project: p, Kind: "test.op"}, queue.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, op.ID)
	}
	if _, err := groups.NewLedger(s).Enqueue(ctx, queue.Operation{ID: queue.NewID(), Tenant: "OTHER", Project: "MOH", Kind: "test.op"}, queue.Limits{}); err != nil {
		t.Fatal(err)
	}
	check := func(project string, limit int, want ...string) {
		t.Helper()
		got, err := s.PendingIDs(ctx, "SHIP", project, limit)
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("PendingIDs(SHIP, %q, %d) = %v, %v; want %v", project, limit, got, err, want)
		}
	}
	check("", 0, ids...)
	check("MOE", 0, ids[1], ids[3])
	check("", 2, ids[0], ids[1])
	check("NONE", 0)

	first, err := s.Operation(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	first.State = queue.Succeeded
	if err := groups.NewLedger(s).Complete(ctx, first, nil); err != nil {
		t.Fatal(err)
	}
	check("", 0, ids[1:]...)
	if got, err := s.PendingIDs(ctx, "NOBODY", "", 0); err != nil || len(got) != 0 {
		t.Fatalf("unknown tenant: %v, %v", got, err)
	}
}
