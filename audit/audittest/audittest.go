// Package audittest is the conformance suite for audit.Store
// implementations.
//
// Every backend runs the same cases, so what the audit API promises (newest
// first, cursor pages that visit every entry once, exact filters, inclusive
// time bounds, tenant isolation, retention, append-only and atomic appends)
// is specified once. A backend runs it with a ten-line test:
//
//	func TestAuditStore(t *testing.T) {
//		audittest.RunStoreTests(t, func(t *testing.T) audit.Store { return bolttest.MustOpen(t) })
//	}
//
//	func TestAuditStoreConcurrency(t *testing.T) {
//		audittest.RunConcurrencyTests(t, func(t *testing.T) audit.Store { return bolttest.MustOpen(t) })
//	}
//
// newStore must return a new, empty store for each call and arrange its own
// clean-up (and any integrity check) with t.Cleanup. The cases hold at most
// a few thousand entries and expect a store not to stop a query early (see
// audit.Store.QueryAudit) before it has examined 1000 of them. Besides the
// store's own methods, cases run an audit.Log over the store, as the service
// does, to check cursors and retention end to end.
package audittest

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/groupgate/groupgate/audit"
	"github.com/groupgate/groupgate/internal/testkit"
)

// t0 is the start of the fixed timeline the cases use.
var t0 = time.Date(2026, 3, 2, 9, 15, 0, 0, time.UTC)

// RunStoreTests runs the sequential conformance cases, each in its own
// subtest on a fresh store from newStore.
func RunStoreTests(t *testing.T, newStore func(*testing.T) audit.Store) {
	t.Helper()
	testkit.RunCases(t, newStore, []testkit.Case[audit.Store]{
		{Name: "QueryEmptyStore", Run: testEmpty},
		{Name: "AppendRoundTripsEveryField", Run: testRoundTrip},
		{Name: "AppendNothingIsHarmless", Run: testAppendNothing},
		{Name: "NewestFirst", Run: testNewestFirst},
		{Name: "SameInstantOrderedBySequence", Run: testSameInstant},
		{Name: "AppendRejectsInvalidEntries", Run: testAppendInvalid},
		{Name: "AppendIsAtomic", Run: testAppendAtomic},
		{Name: "AppendRejectsDuplicateIDs", Run: testAppendDuplicate},
		{Name: "PagesVisitEveryEntryOnce", Run: testPagination},
		{Name: "BeforeIsExclusive", Run: testBefore},
		{Name: "QueryRejectsBadPositionAndLimit", Run: testQueryInvalid},
		{Name: "FilterEachField", Run: testFilters},
		{Name: "SinceUntilInclusive", Run: testTimeBounds},
		{Name: "TenantIsolation", Run: testTenantIsolation},
		{Name: "TenantPagesWithOtherTenantsInterleaved", Run: testTenantPagination},
		{Name: "PurgeBoundaries", Run: testPurgeBoundaries},
		{Name: "PurgeKeepsIndexConsistent", Run: testPurgeIndex},
		{Name: "PurgeManyEntries", Run: testPurgeMany},
		{Name: "LogRecordsAndQueries", Run: testLogRecord},
		{Name: "LogCursorPages", Run: testLogPages},
		{Name: "LogCursorTamperingRejected", Run: testLogTampering},
		{Name: "LogPurgeRetention", Run: testLogPurge},
	})
}

// RunConcurrencyTests runs the cases that race writers and readers against
// each other. Run them under the race detector.
func RunConcurrencyTests(t *testing.T, newStore func(*testing.T) audit.Store) {
	t.Helper()
	testkit.RunCases(t, newStore, []testkit.Case[audit.Store]{
		{Name: "ConcurrentAppend", Run: testConcurrentAppend},
		{Name: "ConcurrentRecordSameInstant", Run: testConcurrentRecord},
		{Name: "ConcurrentAppendSameID", Run: testConcurrentDuplicate},
		{Name: "ConcurrentQueryWhileAppending", Run: testConcurrentQuery},
		{Name: "ConcurrentPurgeAndAppend", Run: testConcurrentPurge},
	})
}

// --- helpers ----------------------------------------------------------------

// entry returns a valid entry at instant at with sequence number seq, every
// field filled.
func entry(at time.Time, seq uint32) audit.Entry {
	return audit.Entry{
		ID: audit.MakeID(at, seq), Time: at.UTC(),
		Actor: "key:0123abcd", Role: "project", Tenant: "SHIP", Project: "MOH",
		Action: "group.create", Target: "SHIP:MOH:billing", Outcome: audit.Accepted, Status: 202,
		RequestID: "req-1", OperationID: "op-1", Detail: "queued",
	}
}

// at returns an entry i seconds into the timeline.
func at(i int) audit.Entry { return entry(t0.Add(time.Duration(i)*time.Second), 0) }

func mustAppend(t *testing.T, s audit.Store, entries ...audit.Entry) {
	t.Helper()
	if err := s.AppendAudit(t.Context(), entries...); err != nil {
		t.Fatalf("AppendAudit(%d entries): %v", len(entries), err)
	}
}

// all pages through the entries matching f with pages of limit, checking
// each page, and returns them.
func all(t *testing.T, s audit.Store, f audit.Filter, limit int) []audit.Entry {
	t.Helper()
	var out []audit.Entry
	before := ""
	for range 100_000 {
		page, next, err := s.QueryAudit(t.Context(), f, before, limit)
		if err != nil {
			t.Fatalf("QueryAudit(%+v, before %q, limit %d): %v", f, before, limit, err)
		}
		if len(page) > limit {
			t.Fatalf("QueryAudit(limit %d) returned %d entries", limit, len(page))
		}
		if next != "" && len(page) < limit {
			t.Fatalf("QueryAudit(limit %d) returned a short page of %d with next %q: the suite expects a store not to stop early on small data", limit, len(page), next)
		}
		out = append(out, page...)
		if next == "" {
			checkNewestFirst(t, out)
			return out
		}
		if next != page[len(page)-1].ID {
			t.Fatalf("next %q is not the last returned ID %q", next, page[len(page)-1].ID)
		}
		before = next
	}
	t.Fatal("QueryAudit pages did not end")
	return nil
}

func checkNewestFirst(t *testing.T, es []audit.Entry) {
	t.Helper()
	for i := 1; i < len(es); i++ {
		if es[i].ID >= es[i-1].ID {
			t.Fatalf("entries not strictly newest first at %d: %s then %s", i, es[i-1].ID, es[i].ID)
		}
	}
}

func ids(es []audit.Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

// expect returns the entries of es that f matches, newest first.
func expect(es []audit.Entry, f audit.Filter) []string {
	var out []string
	for _, e := range es {
		if f.Match(e) {
			out = append(out, e.ID)
		}
	}
	slices.Sort(out)
	slices.Reverse(out)
	return out
}

func sameIDs(t *testing.T, what string, got []audit.Entry, want []string) {
	t.Helper()
	if g := ids(got); !slices.Equal(g, want) {
		t.Errorf("%s: got %d entries %v, want %d %v", what, len(g), abbrev(g), len(want), abbrev(want))
	}
}

func abbrev(ids []string) string {
	if len(ids) > 8 {
		return fmt.Sprint(ids[:4], "...", ids[len(ids)-4:])
	}
	return fmt.Sprint(ids)
}

// --- sequential cases -------------------------------------------------------

func testEmpty(t *testing.T, s audit.Store) {
	for _, f := range []audit.Filter{{}, {Tenant: "SHIP"}, {Since: t0, Until: t0.Add(time.Hour)}} {
		es, next, err := s.QueryAudit(t.Context(), f, "", 10)
		if err != nil || len(es) != 0 || next != "" {
			t.Errorf("QueryAudit(%+v) on an empty store = %v, %q, %v; want nothing", f, es, next, err)
		}
	}
	if n, err := s.PurgeAudit(t.Context(), t0); n != 0 || err != nil {
		t.Errorf("PurgeAudit on an empty store = %d, %v", n, err)
	}
}

func testRoundTrip(t *testing.T, s audit.Store) {
	full := entry(t0.Add(123456789*time.Nanosecond), 42)
	full.Detail = "upstream 503: Service Unavailable — retried 3×"
	minimal := audit.Entry{ID: audit.MakeID(t0, 7), Time: t0, Actor: audit.System, Action: "operation.failed", Outcome: audit.Failed}
	mustAppend(t, s, full, minimal)
	got, next, err := s.QueryAudit(t.Context(), audit.Filter{}, "", 10)
	if err != nil || next != "" {
		t.Fatalf("QueryAudit = %v, next %q", err, next)
	}
	if want := []audit.Entry{full, minimal}; !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
	}
	if got[0].Time.Location() != time.UTC {
		t.Errorf("Time location = %v, want UTC", got[0].Time.Location())
	}
}

func testAppendNothing(t *testing.T, s audit.Store) {
	if err := s.AppendAudit(t.Context()); err != nil {
		t.Fatalf("AppendAudit() = %v", err)
	}
	if es := all(t, s, audit.Filter{}, 10); len(es) != 0 {
		t.Fatalf("entries after an empty append: %v", es)
	}
}

func testNewestFirst(t *testing.T, s audit.Store) {
	var es []audit.Entry
	for i := range 40 {
		es = append(es, at(i))
	}
	shuffled := slices.Clone(es)
	rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for _, e := range shuffled {
		mustAppend(t, s, e)
	}
	got := all(t, s, audit.Filter{}, 100)
	sameIDs(t, "all", got, expect(es, audit.Filter{}))
	if !got[0].Time.Equal(t0.Add(39 * time.Second)) {
		t.Errorf("newest entry at %v, want %v", got[0].Time, t0.Add(39*time.Second))
	}
}

func testSameInstant(t *testing.T, s audit.Store) {
	var es []audit.Entry
	for _, seq := range []uint32{0, 1, 2, 1 << 20, 1<<31 - 1, 1 << 31, math.MaxUint32} {
		es = append(es, entry(t0, seq))
	}
	es = append(es, entry(t0.Add(time.Nanosecond), 0), entry(t0.Add(-time.Nanosecond), math.MaxUint32))
	mustAppend(t, s, es...)
	got := all(t, s, audit.Filter{}, 3)
	sameIDs(t, "same instant", got, expect(es, audit.Filter{}))
	if !got[0].Time.Equal(t0.Add(time.Nanosecond)) || !got[1].Time.Equal(t0) || !got[len(got)-1].Time.Equal(t0.Add(-time.Nanosecond)) {
		t.Errorf("times: newest %v, next %v, oldest %v", got[0].Time, got[1].Time, got[len(got)-1].Time)
	}
}

func testAppendInvalid(t *testing.T, s audit.Store) {
	mod := func(f func(*audit.Entry)) audit.Entry {
		e := at(1)
		f(&e)
		return e
	}
	cases := map[string]audit.Entry{
		"no id":             mod(func(e *audit.Entry) { e.ID = "" }),
		"short id":          mod(func(e *audit.Entry) { e.ID = e.ID[1:] }),
		"upper-case id":     mod(func(e *audit.Entry) { e.ID = strings.ToUpper(audit.MakeID(e.Time, 0xabcdef)) }),
		"non-hex id":        mod(func(e *audit.Entry) { e.ID = "zz" + e.ID[2:] }),
		"negative instant":  mod(func(e *audit.Entry) { e.ID = "f" + e.ID[1:] }),
		"time not in id":    mod(func(e *audit.Entry) { e.Time = e.Time.Add(time.Nanosecond) }),
		"zero time":         mod(func(e *audit.Entry) { e.Time = time.Time{} }),
		"no actor":          mod(func(e *audit.Entry) { e.Actor = "" }),
		"no action":         mod(func(e *audit.Entry) { e.Action = "" }),
		"upper-case action": mod(func(e *audit.Entry) { e.Action = "Group.Create" }),
		"no outcome":        mod(func(e *audit.Entry) { e.Outcome = "" }),
		"unknown outcome":   mod(func(e *audit.Entry) { e.Outcome = "ok" }),
		"status 42":         mod(func(e *audit.Entry) { e.Status = 42 }),
		"newline in detail": mod(func(e *audit.Entry) { e.Detail = "a\nb" }),
		"control in target": mod(func(e *audit.Entry) { e.Target = "SHIP:MOH:\x1b[2Jx" }),
		"key in detail":     mod(func(e *audit.Entry) { e.Detail = "gk_0123abcd_" + strings.Repeat("A", 43) }),
		"jwt in actor":      mod(func(e *audit.Entry) { e.Actor = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0." }),
		"too long detail":   mod(func(e *audit.Entry) { e.Detail = strings.Repeat("x", audit.MaxFieldLen+1) }),
	}
	for name, e := range cases {
		if err := s.AppendAudit(t.Context(), e); !errors.Is(err, audit.ErrInvalidEntry) {
			t.Errorf("%s: AppendAudit = %v, want ErrInvalidEntry", name, err)
		}
	}
	if es := all(t, s, audit.Filter{}, 100); len(es) != 0 {
		t.Errorf("invalid entries stored: %v", ids(es))
	}
}

func testAppendAtomic(t *testing.T, s audit.Store) {
	bad := at(2)
	bad.Outcome = "bogus"
	if err := s.AppendAudit(t.Context(), at(1), bad, at(3)); !errors.Is(err, audit.ErrInvalidEntry) {
		t.Fatalf("AppendAudit with one invalid entry = %v, want ErrInvalidEntry", err)
	}
	if es := all(t, s, audit.Filter{}, 100); len(es) != 0 {
		t.Fatalf("a failed append stored %v", ids(es))
	}
	mustAppend(t, s, at(1))
	if err := s.AppendAudit(t.Context(), at(4), at(1), at(5)); !errors.Is(err, audit.ErrDuplicate) {
		t.Fatalf("AppendAudit with a stored ID = %v, want ErrDuplicate", err)
	}
	sameIDs(t, "after failed append", all(t, s, audit.Filter{}, 100), []string{at(1).ID})
}

func testAppendDuplicate(t *testing.T, s audit.Store) {
	first := at(1)
	mustAppend(t, s, first)
	second := at(1)
	second.Actor, second.Detail = "key:intruder", "overwrite attempt"
	if err := s.AppendAudit(t.Context(), second); !errors.Is(err, audit.ErrDuplicate) {
		t.Fatalf("AppendAudit(same ID) = %v, want ErrDuplicate", err)
	}
	if err := s.AppendAudit(t.Context(), at(2), at(2)); !errors.Is(err, audit.ErrDuplicate) {
		t.Fatalf("AppendAudit(twice in one call) = %v, want ErrDuplicate", err)
	}
	got := all(t, s, audit.Filter{}, 10)
	if len(got) != 1 || !reflect.DeepEqual(got[0], first) {
		t.Fatalf("after duplicates: %+v, want only the first %+v", got, first)
	}
}

// dataset is entries across tenants, projects, actors, actions and outcomes,
// one per second.
func dataset(n int) []audit.Entry {
	tenants := []string{"SHIP", "PORT", "SHIPYARD", ""}
	projects := []string{"MOH", "MOF", ""}
	actors := []string{"key:0123abcd", "jwt:https://idp.example#svc-billing", audit.System}
	actions := []string{"group.create", "group.delete", "operation.succeeded", "key.revoke", "operation.failed"}
	outcomes := []string{audit.Accepted, audit.Succeeded, audit.Failed, audit.Denied, audit.Cancelled, audit.Accepted}
	var es []audit.Entry
	for i := range n {
		e := at(i)
		e.Tenant = tenants[i%len(tenants)]
		e.Project = projects[i%len(projects)]
		e.Actor = actors[i%len(actors)]
		e.Action = actions[i%len(actions)]
		e.Outcome = outcomes[i%len(outcomes)]
		e.Target = fmt.Sprintf("%s:%s:g%d", e.Tenant, e.Project, i)
		es = append(es, e)
	}
	return es
}

func testPagination(t *testing.T, s audit.Store) {
	es := dataset(57)
	mustAppend(t, s, es...)
	want := expect(es, audit.Filter{})
	for _, limit := range []int{1, 2, 7, 56, 57, 58, 1000} {
		got := all(t, s, audit.Filter{}, limit)
		sameIDs(t, fmt.Sprintf("limit %d", limit), got, want)
	}
	// A page of exactly the remaining entries says there is no more.
	page, next, err := s.QueryAudit(t.Context(), audit.Filter{}, es[7].ID, 7)
	if err != nil || len(page) != 7 || next != "" {
		t.Errorf("last full page: %d entries, next %q, %v; want 7 and no next", len(page), next, err)
	}
}

func testBefore(t *testing.T, s audit.Store) {
	es := dataset(10)
	mustAppend(t, s, es...)
	page, _, err := s.QueryAudit(t.Context(), audit.Filter{}, es[5].ID, 100)
	if err != nil {
		t.Fatal(err)
	}
	sameIDs(t, "before a stored ID", page, expect(es[:5], audit.Filter{}))
	// A position between entries, as after a purge, works too.
	between := audit.MakeID(es[5].Time.Add(time.Millisecond), 0)
	page, _, err = s.QueryAudit(t.Context(), audit.Filter{}, between, 100)
	if err != nil {
		t.Fatal(err)
	}
	sameIDs(t, "before an unstored ID", page, expect(es[:6], audit.Filter{}))
	page, next, err := s.QueryAudit(t.Context(), audit.Filter{}, es[0].ID, 100)
	if err != nil || len(page) != 0 || next != "" {
		t.Errorf("before the oldest: %v, %q, %v; want nothing", ids(page), next, err)
	}
}

func testQueryInvalid(t *testing.T, s audit.Store) {
	mustAppend(t, s, at(1))
	for _, before := range []string{"x", strings.ToUpper(at(1).ID), at(1).ID + "0", "ffffffffffffffffffffffff"} {
		if _, _, err := s.QueryAudit(t.Context(), audit.Filter{}, before, 10); !errors.Is(err, audit.ErrInvalidFilter) {
			t.Errorf("QueryAudit(before %q) = %v, want ErrInvalidFilter", before, err)
		}
	}
	for _, limit := range []int{0, -1} {
		if _, _, err := s.QueryAudit(t.Context(), audit.Filter{}, "", limit); !errors.Is(err, audit.ErrInvalidFilter) {
			t.Errorf("QueryAudit(limit %d) = %v, want ErrInvalidFilter", limit, err)
		}
	}
}

func testFilters(t *testing.T, s audit.Store) {
	es := dataset(120)
	mustAppend(t, s, es...)
	filters := []audit.Filter{
		{Tenant: "SHIP"},
		{Tenant: "SHIPYARD"},
		{Project: "MOH"},
		{Actor: audit.System},
		{Actor: "jwt:https://idp.example#svc-billing"},
		{Action: "group.delete"},
		{Outcome: audit.Denied},
		{Tenant: "PORT", Project: "MOF"},
		{Tenant: "SHIP", Outcome: audit.Accepted, Action: "group.create"},
		{Tenant: "PORT", Actor: "key:0123abcd", Since: t0.Add(30 * time.Second), Until: t0.Add(90 * time.Second)},
		{Project: "MOH", Since: t0.Add(100 * time.Second)},
		{Tenant: "NOBODY"},
		{Tenant: "ship"}, // exact match: tenants are stored as given
		{Action: "group"},
	}
	for _, f := range filters {
		want := expect(es, f)
		sameIDs(t, fmt.Sprintf("%+v", f), all(t, s, f, 7), want)
		sameIDs(t, fmt.Sprintf("%+v one page", f), all(t, s, f, 1000), want)
	}
	// The filters are not vacuous.
	if n := len(expect(es, audit.Filter{Tenant: "SHIP", Outcome: audit.Accepted, Action: "group.create"})); n == 0 {
		t.Fatal("dataset has no entry for the combined filter")
	}
}

func testTimeBounds(t *testing.T, s audit.Store) {
	var es []audit.Entry
	for i := range 10 {
		es = append(es, at(i))
	}
	sec := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }
	edge := []audit.Entry{
		entry(sec(3), 5), // at Since, later sequence
		entry(sec(3).Add(-time.Nanosecond), math.MaxUint32), // just before Since
		entry(sec(6), math.MaxUint32),                       // at Until, last sequence
		entry(sec(6).Add(time.Nanosecond), 0),               // just after Until
	}
	es = append(es, edge...)
	mustAppend(t, s, es...)
	for _, f := range []audit.Filter{
		{Since: sec(3), Until: sec(6)},
		{Since: sec(3)},
		{Until: sec(6)},
		{Since: sec(6), Until: sec(6)},
		{Since: sec(6).Add(time.Nanosecond), Until: sec(6).Add(time.Nanosecond)},
		{Since: sec(7), Until: sec(6)}, // empty: the Log refuses it, a store returns nothing
		{Since: sec(20)},
		{Until: sec(-1)},
		{Since: time.Unix(0, 0), Until: time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Since: sec(3), Until: sec(6), Tenant: "SHIP"},
	} {
		sameIDs(t, fmt.Sprintf("since %v until %v tenant %q", f.Since, f.Until, f.Tenant), all(t, s, f, 2), expect(es, f))
	}
	if got := all(t, s, audit.Filter{Since: sec(3), Until: sec(6)}, 100); len(got) != 6 {
		// 3, 3+seq5, 4, 5, 6, 6+maxseq
		t.Errorf("inclusive bounds: got %d entries, want 6", len(got))
	}
}

func testTenantIsolation(t *testing.T, s audit.Store) {
	var es []audit.Entry
	for i, tenant := range []string{"A", "AB", "ABC", "", "B", "AB", "A", "", "ABC", "AB"} {
		e := at(i)
		e.Tenant = tenant
		es = append(es, e)
	}
	mustAppend(t, s, es...)
	for _, tenant := range []string{"A", "AB", "ABC", "B", "C", "a", "A\x00"} {
		got := all(t, s, audit.Filter{Tenant: tenant}, 2)
		sameIDs(t, "tenant "+tenant, got, expect(es, audit.Filter{Tenant: tenant}))
		for _, e := range got {
			if e.Tenant != tenant {
				t.Errorf("tenant %q query returned entry %s of tenant %q", tenant, e.ID, e.Tenant)
			}
		}
	}
	if got := all(t, s, audit.Filter{}, 3); len(got) != len(es) {
		t.Errorf("unfiltered query: %d entries, want %d (entries without a tenant included)", len(got), len(es))
	}
}

func testTenantPagination(t *testing.T, s audit.Store) {
	var es []audit.Entry
	for i := range 300 {
		e := at(i)
		e.Tenant = "BIG"
		if i%10 == 0 {
			e.Tenant = "SMALL"
		}
		es = append(es, e)
	}
	mustAppend(t, s, es...)
	for _, f := range []audit.Filter{{Tenant: "SMALL"}, {Tenant: "BIG"}, {Tenant: "SMALL", Since: t0.Add(95 * time.Second), Until: t0.Add(205 * time.Second)}} {
		for _, limit := range []int{1, 4, 30, 500} {
			sameIDs(t, fmt.Sprintf("%+v limit %d", f, limit), all(t, s, f, limit), expect(es, f))
		}
	}
}

func testPurgeBoundaries(t *testing.T, s audit.Store) {
	before := t0.Add(time.Hour)
	es := []audit.Entry{
		entry(before.Add(-time.Hour), 0),
		entry(before.Add(-time.Nanosecond), math.MaxUint32),
		entry(before, 0),
		entry(before, 9),
		entry(before.Add(time.Nanosecond), 0),
		entry(before.Add(time.Hour), 0),
	}
	es[0].Tenant, es[1].Tenant, es[2].Tenant = "", "PORT", "PORT"
	mustAppend(t, s, es...)
	n, err := s.PurgeAudit(t.Context(), before)
	if err != nil || n != 2 {
		t.Fatalf("PurgeAudit = %d, %v; want 2 (entries strictly before %v)", n, err, before)
	}
	kept := expect(es, audit.Filter{Since: before})
	sameIDs(t, "kept", all(t, s, audit.Filter{}, 2), kept)
	sameIDs(t, "kept in PORT", all(t, s, audit.Filter{Tenant: "PORT"}, 2), []string{es[2].ID})
	if n, err := s.PurgeAudit(t.Context(), before); n != 0 || err != nil {
		t.Errorf("second PurgeAudit = %d, %v; want 0", n, err)
	}
	// Everything goes, and the log takes new entries afterwards.
	if n, err := s.PurgeAudit(t.Context(), before.Add(24*time.Hour)); n != 4 || err != nil {
		t.Errorf("PurgeAudit(all) = %d, %v; want 4", n, err)
	}
	sameIDs(t, "after purging all", all(t, s, audit.Filter{}, 10), nil)
	e := entry(before.Add(2*time.Hour), 0)
	e.Tenant = "PORT"
	mustAppend(t, s, e)
	sameIDs(t, "PORT after purge and append", all(t, s, audit.Filter{Tenant: "PORT"}, 10), []string{e.ID})
}

func testPurgeIndex(t *testing.T, s audit.Store) {
	es := dataset(200)
	mustAppend(t, s, es...)
	cut := t0.Add(77 * time.Second)
	n, err := s.PurgeAudit(t.Context(), cut)
	if err != nil || n != 77 {
		t.Fatalf("PurgeAudit = %d, %v; want 77", n, err)
	}
	for _, f := range []audit.Filter{{}, {Tenant: "SHIP"}, {Tenant: "PORT"}, {Tenant: "SHIPYARD"}, {Tenant: "SHIP", Project: "MOH"}} {
		want := expect(es, audit.Filter{Tenant: f.Tenant, Project: f.Project, Since: cut})
		sameIDs(t, fmt.Sprintf("%+v after purge", f), all(t, s, f, 9), want)
	}
}

func testPurgeMany(t *testing.T, s audit.Store) {
	const n = 5000
	var es []audit.Entry
	for i := range n {
		e := entry(t0.Add(time.Duration(i)*time.Millisecond), uint32(i))
		e.Tenant = []string{"SHIP", "PORT", ""}[i%3]
		es = append(es, e)
	}
	for chunk := range slices.Chunk(es, 1000) {
		mustAppend(t, s, chunk...)
	}
	cut := t0.Add(4321 * time.Millisecond)
	got, err := s.PurgeAudit(t.Context(), cut)
	if err != nil || got != 4321 {
		t.Fatalf("PurgeAudit = %d, %v; want 4321", got, err)
	}
	for _, tenant := range []string{"", "SHIP", "PORT"} {
		f := audit.Filter{Tenant: tenant}
		sameIDs(t, "tenant "+tenant, all(t, s, f, 1000), expect(es, audit.Filter{Tenant: tenant, Since: cut}))
	}
}

// --- cases through a Log ------------------------------------------------------

func testLogRecord(t *testing.T, s audit.Store) {
	clk := testkit.NewClock(t0)
	l := audit.NewLog(s, clk.Now, nil)
	l.Record(t.Context(), audit.Entry{
		Actor: "key:0123abcd", Role: "project", Tenant: "SHIP", Project: "MOH", Action: "group.create",
		Target: "SHIP:MOH:billing", Outcome: audit.Accepted, Status: 202, RequestID: "req-1", OperationID: "op-1",
		Detail: "  queued\nBearer abc.def.ghi  ", ID: "caller's id is ignored", Time: t0.Add(-time.Hour),
	})
	clk.Advance(time.Millisecond)
	l.Record(t.Context(), audit.Entry{Actor: audit.System, Role: audit.System, Tenant: "SHIP", Project: "MOH",
		Action: "operation.succeeded", Target: "SHIP:MOH:billing", Outcome: audit.Succeeded, OperationID: "op-1"})
	l.Record(t.Context(), audit.Entry{Actor: "key:0123abcd"}) // invalid: logged, not stored
	if l.Failures() != 1 {
		t.Errorf("Failures() = %d, want 1 (the invalid entry)", l.Failures())
	}
	page, err := l.Query(t.Context(), audit.Query{Filter: audit.Filter{Tenant: "SHIP"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Entries) != 2 || page.Next != "" {
		t.Fatalf("page = %+v, want 2 entries and no next", page)
	}
	got := page.Entries[1]
	if !got.Time.Equal(t0) {
		t.Errorf("Time = %v, want the clock's %v", got.Time, t0)
	}
	if at, _, err := audit.ParseID(got.ID); err != nil || !at.Equal(got.Time) {
		t.Errorf("ID %q: instant %v, %v; want %v", got.ID, at, err, got.Time)
	}
	if got.Detail != "queued Bearer [redacted]" {
		t.Errorf("Detail = %q, want sanitized", got.Detail)
	}
	if !page.Entries[0].Time.Equal(t0.Add(time.Millisecond)) || page.Entries[0].Action != "operation.succeeded" {
		t.Errorf("newest = %+v", page.Entries[0])
	}
}

func testLogPages(t *testing.T, s audit.Store) {
	clk := testkit.NewClock(t0)
	l := audit.NewLog(s, clk.Now, nil)
	for i := range 45 {
		tenant := "SHIP"
		if i%3 == 0 {
			tenant = "PORT"
		}
		l.Record(t.Context(), audit.Entry{Actor: "key:0123abcd", Tenant: tenant, Action: "group.create", Outcome: audit.Accepted, Target: fmt.Sprint(i)})
		if i%2 == 0 {
			clk.Advance(time.Second) // and every other pair in the same instant
		}
	}
	for _, f := range []audit.Filter{{}, {Tenant: "SHIP"}, {Tenant: "PORT", Since: t0.Add(5 * time.Second)}} {
		var got []audit.Entry
		q := audit.Query{Filter: f, Limit: 4}
		for range 100 {
			page, err := l.Query(t.Context(), q)
			if err != nil {
				t.Fatalf("Query(%+v): %v", q, err)
			}
			got = append(got, page.Entries...)
			if page.Next == "" {
				break
			}
			q.Cursor = page.Next
		}
		checkNewestFirst(t, got)
		unpaged, err := l.Query(t.Context(), audit.Query{Filter: f, Limit: audit.MaxLimit})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, unpaged.Entries) || len(got) == 0 {
			t.Errorf("%+v: paged %d entries, one page %d; want the same, non-empty", f, len(got), len(unpaged.Entries))
		}
	}
}

func testLogTampering(t *testing.T, s audit.Store) {
	clk := testkit.NewClock(t0)
	l := audit.NewLog(s, clk.Now, nil)
	for i := range 5 {
		clk.Advance(time.Second)
		l.Record(t.Context(), audit.Entry{Actor: "key:0123abcd", Tenant: "SHIP", Action: "group.delete", Outcome: audit.Accepted, Target: fmt.Sprint(i)})
	}
	f := audit.Filter{Tenant: "SHIP"}
	page, err := l.Query(t.Context(), audit.Query{Filter: f, Limit: 2})
	if err != nil || page.Next == "" {
		t.Fatalf("first page: %+v, %v", page, err)
	}
	cursor := page.Next
	// The genuine cursor works, with any limit.
	if p, err := l.Query(t.Context(), audit.Query{Filter: f, Cursor: cursor, Limit: 10}); err != nil || len(p.Entries) != 3 {
		t.Fatalf("genuine cursor: %d entries, %v; want 3", len(p.Entries), err)
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	bad := []string{cursor[:len(cursor)-1], cursor + "A", cursor + "=", "=" + cursor, " " + cursor, "x", "!!!!", strings.ToUpper(cursor)}
	for i := range len(cursor) {
		for _, c := range []byte{alphabet[(strings.IndexByte(alphabet, cursor[i])+1)%64], alphabet[(strings.IndexByte(alphabet, cursor[i])+32)%64], '.'} {
			b := []byte(cursor)
			b[i] = c
			bad = append(bad, string(b))
		}
	}
	for _, c := range bad {
		if c == cursor {
			continue
		}
		if _, err := l.Query(t.Context(), audit.Query{Filter: f, Cursor: c}); !errors.Is(err, audit.ErrInvalidFilter) {
			t.Errorf("cursor %q (genuine %q): %v, want ErrInvalidFilter", c, cursor, err)
		}
	}
	// A cursor belongs to its filter.
	for _, other := range []audit.Filter{{}, {Tenant: "PORT"}, {Tenant: "SHIP", Action: "group.delete"}, {Tenant: "SHIP", Since: t0}} {
		if _, err := l.Query(t.Context(), audit.Query{Filter: other, Cursor: cursor}); !errors.Is(err, audit.ErrInvalidFilter) {
			t.Errorf("cursor of %+v used with %+v: %v, want ErrInvalidFilter", f, other, err)
		}
	}
}

func testLogPurge(t *testing.T, s audit.Store) {
	clk := testkit.NewClock(t0)
	l := audit.NewLog(s, clk.Now, nil)
	for i := range 10 {
		l.Record(t.Context(), audit.Entry{Actor: "key:0123abcd", Tenant: "SHIP", Action: "group.create", Outcome: audit.Accepted, Target: fmt.Sprint(i)})
		clk.Advance(24 * time.Hour)
	}
	// Now t0+10d: a 7-day retention keeps the entries at t0+3d..t0+9d.
	n, err := l.Purge(t.Context(), 7*24*time.Hour)
	if err != nil || n != 3 {
		t.Fatalf("Purge(7d) = %d, %v; want 3", n, err)
	}
	page, err := l.Query(t.Context(), audit.Query{Filter: audit.Filter{Tenant: "SHIP"}})
	if err != nil || len(page.Entries) != 7 {
		t.Fatalf("after purge: %d entries, %v; want 7", len(page.Entries), err)
	}
	if oldest := page.Entries[6].Time; !oldest.Equal(t0.Add(3 * 24 * time.Hour)) {
		t.Errorf("oldest kept entry at %v, want %v", oldest, t0.Add(3*24*time.Hour))
	}
	for _, r := range []time.Duration{0, -time.Hour} {
		if _, err := l.Purge(t.Context(), r); err == nil {
			t.Errorf("Purge(%v) succeeded, want an error", r)
		}
	}
}

// --- concurrency --------------------------------------------------------------

func testConcurrentAppend(t *testing.T, s audit.Store) {
	const writers, each = 16, 40
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	var appended []audit.Entry
	var mu sync.Mutex
	for w := range writers {
		wg.Go(func() {
			for i := 0; i < each; {
				n := 1 + (w+i)%3 // batches of 1-3
				var batch []audit.Entry
				for j := 0; j < n && i < each; j++ {
					// Every writer writes the same instants; the sequence
					// numbers keep the IDs apart.
					e := entry(t0.Add(time.Duration(i)*time.Millisecond), uint32(w))
					e.Tenant = []string{"SHIP", "PORT"}[w%2]
					batch = append(batch, e)
					i++
				}
				if err := s.AppendAudit(t.Context(), batch...); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				appended = append(appended, batch...)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent AppendAudit: %v", err)
	}
	got := all(t, s, audit.Filter{}, 97)
	sameIDs(t, "all", got, expect(appended, audit.Filter{}))
	if len(got) != writers*each {
		t.Errorf("%d entries stored, want %d", len(got), writers*each)
	}
	sameIDs(t, "SHIP", all(t, s, audit.Filter{Tenant: "SHIP"}, 50), expect(appended, audit.Filter{Tenant: "SHIP"}))
}

func testConcurrentRecord(t *testing.T, s audit.Store) {
	// A stopped clock: every ID is issued in the same nanosecond.
	l := audit.NewLog(s, func() time.Time { return t0 }, nil)
	const writers, each = 32, 25
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				l.Record(t.Context(), audit.Entry{Actor: fmt.Sprintf("key:w%d", w), Tenant: "SHIP", Action: "group.create", Outcome: audit.Accepted, Target: fmt.Sprint(i)})
			}
		})
	}
	wg.Wait()
	if l.Failures() != 0 {
		t.Fatalf("Failures() = %d", l.Failures())
	}
	got := all(t, s, audit.Filter{Tenant: "SHIP"}, audit.MaxLimit) // also checks the IDs strictly decrease
	if len(got) != writers*each {
		t.Fatalf("%d entries stored, want %d", len(got), writers*each)
	}
	for _, e := range got {
		if !e.Time.Equal(t0) {
			t.Fatalf("entry %s at %v, want %v", e.ID, e.Time, t0)
		}
	}
	// Each writer's entries are in the order it recorded them.
	next := map[string]int{}
	for _, e := range slices.Backward(got) {
		if want := fmt.Sprint(next[e.Actor]); e.Target != want {
			t.Fatalf("writer %s: entry %s is %s, want %s", e.Actor, e.ID, e.Target, want)
		}
		next[e.Actor]++
	}
}

func testConcurrentDuplicate(t *testing.T, s audit.Store) {
	const writers = 16
	var wg sync.WaitGroup
	results := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			e := at(1)
			e.Actor = fmt.Sprintf("key:w%d", w)
			results <- s.AppendAudit(t.Context(), e)
		})
	}
	wg.Wait()
	close(results)
	ok := 0
	for err := range results {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, audit.ErrDuplicate):
			t.Errorf("AppendAudit = %v, want nil or ErrDuplicate", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d appends of one ID succeeded, want 1", ok)
	}
	if got := all(t, s, audit.Filter{}, 10); len(got) != 1 {
		t.Errorf("%d entries stored, want 1", len(got))
	}
}

func testConcurrentQuery(t *testing.T, s audit.Store) {
	mustAppend(t, s, dataset(50)...)
	const writers, each, readers, passes = 4, 25, 4, 10
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				e := entry(t0.Add(time.Hour+time.Duration(i)*time.Millisecond), uint32(w))
				if err := s.AppendAudit(t.Context(), e); err != nil {
					t.Errorf("AppendAudit: %v", err)
					return
				}
			}
		})
	}
	for range readers {
		wg.Go(func() {
			for range passes {
				// A reader pages through while writers add newer entries:
				// it never sees an entry twice or out of order, and sees at
				// least the entries that were there before.
				var got []audit.Entry
				before := ""
				for {
					page, next, err := s.QueryAudit(t.Context(), audit.Filter{}, before, 13)
					if err != nil {
						t.Errorf("QueryAudit: %v", err)
						return
					}
					got = append(got, page...)
					if next == "" {
						break
					}
					before = next
				}
				for i := 1; i < len(got); i++ {
					if got[i].ID >= got[i-1].ID {
						t.Errorf("concurrent pages out of order: %s then %s", got[i-1].ID, got[i].ID)
						return
					}
				}
				if len(got) < 50 {
					t.Errorf("concurrent pages saw %d entries, want at least 50", len(got))
					return
				}
			}
		})
	}
	wg.Wait()
	if got := all(t, s, audit.Filter{}, 1000); len(got) != 50+writers*each {
		t.Errorf("%d entries, want %d", len(got), 50+writers*each)
	}
}

func testConcurrentPurge(t *testing.T, s audit.Store) {
	old := dataset(600)
	mustAppend(t, s, old...)
	cut := t0.Add(time.Hour)
	const writers, each = 4, 60
	var wg sync.WaitGroup
	var fresh []audit.Entry
	var mu sync.Mutex
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				e := entry(cut.Add(time.Duration(i)*time.Millisecond), uint32(w))
				e.Tenant = "SHIP"
				if err := s.AppendAudit(t.Context(), e); err != nil {
					t.Errorf("AppendAudit: %v", err)
					return
				}
				mu.Lock()
				fresh = append(fresh, e)
				mu.Unlock()
			}
		})
	}
	purged := 0
	wg.Go(func() {
		n, err := s.PurgeAudit(t.Context(), cut)
		if err != nil {
			t.Errorf("PurgeAudit: %v", err)
		}
		purged = n
	})
	wg.Wait()
	if purged != len(old) {
		t.Errorf("PurgeAudit removed %d, want %d", purged, len(old))
	}
	sameIDs(t, "after purge", all(t, s, audit.Filter{}, 100), expect(fresh, audit.Filter{}))
	sameIDs(t, "SHIP after purge", all(t, s, audit.Filter{Tenant: "SHIP"}, 100), expect(fresh, audit.Filter{}))
}
