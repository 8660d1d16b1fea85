package audit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/groupgate/groupgate/audit"
	"github.com/groupgate/groupgate/audit/audittest"
)

var t0 = time.Date(2026, 3, 2, 9, 15, 0, 0, time.UTC)

// memStore is a reference audit.Store: the simplest thing that passes the
// conformance suite, which keeps the suite honest about what it demands of
// a backend. It is safe for concurrent use.
type memStore struct {
	mu      sync.Mutex
	entries map[string]audit.Entry
}

var _ audit.Store = (*memStore)(nil)

func newMemStore() *memStore { return &memStore{entries: map[string]audit.Entry{}} }

func (m *memStore) AppendAudit(ctx context.Context, entries ...audit.Entry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := map[string]bool{}
	for _, e := range entries {
		if err := e.Validate(); err != nil {
			return err
		}
		if _, ok := m.entries[e.ID]; ok || seen[e.ID] {
			return fmt.Errorf("%w: %s", audit.ErrDuplicate, e.ID)
		}
		seen[e.ID] = true
	}
	for _, e := range entries {
		m.entries[e.ID] = e
	}
	return nil
}

func (m *memStore) QueryAudit(ctx context.Context, f audit.Filter, before string, limit int) ([]audit.Entry, string, error) {
	if err := audit.CheckQuery(before, limit); err != nil {
		return nil, "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var matched []audit.Entry
	for _, e := range m.entries {
		if (before == "" || e.ID < before) && f.Match(e) {
			matched = append(matched, e)
		}
	}
	slices.SortFunc(matched, func(a, b audit.Entry) int { return strings.Compare(b.ID, a.ID) })
	if len(matched) > limit {
		return matched[:limit], matched[limit-1].ID, nil
	}
	return matched, "", nil
}

func (m *memStore) PurgeAudit(ctx context.Context, before time.Time) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for id, e := range m.entries {
		if e.Time.Before(before) {
			delete(m.entries, id)
			n++
		}
	}
	return n, nil
}

func TestMemStore(t *testing.T) {
	audittest.RunStoreTests(t, func(*testing.T) audit.Store { return newMemStore() })
}

func TestMemStoreConcurrency(t *testing.T) {
	audittest.RunConcurrencyTests(t, func(*testing.T) audit.Store { return newMemStore() })
}

// fakeStore is an audit.Store of function fields; nil fields fail the test
// that calls them.
type fakeStore struct {
	t      *testing.T
	append func(ctx context.Context, entries ...audit.Entry) error
	query  func(ctx context.Context, f audit.Filter, before string, limit int) ([]audit.Entry, string, error)
	purge  func(ctx context.Context, before time.Time) (int, error)
}

var _ audit.Store = (*fakeStore)(nil)

func (f *fakeStore) AppendAudit(ctx context.Context, entries ...audit.Entry) error {
	if f.append == nil {
		f.t.Fatal("unexpected AppendAudit")
	}
	return f.append(ctx, entries...)
}

func (f *fakeStore) QueryAudit(ctx context.Context, fl audit.Filter, before string, limit int) ([]audit.Entry, string, error) {
	if f.query == nil {
		f.t.Fatal("unexpected QueryAudit")
	}
	return f.query(ctx, fl, before, limit)
}

func (f *fakeStore) PurgeAudit(ctx context.Context, before time.Time) (int, error) {
	if f.purge == nil {
		f.t.Fatal("unexpected PurgeAudit")
	}
	return f.purge(ctx, before)
}

func valid() audit.Entry {
	return audit.Entry{
		Actor: "key:0123abcd", Role: "project", Tenant: "SHIP", Project: "MOH", Action: "group.create",
		Target: "SHIP:MOH:billing", Outcome: audit.Accepted, Status: 202, RequestID: "req-1", Detail: "queued",
	}
}

func TestRecordStoreFailureIsLoggedNotReturned(t *testing.T) {
	var logs bytes.Buffer
	store := &fakeStore{t: t, append: func(context.Context, ...audit.Entry) error { return errors.New("disk full") }}
	l := audit.NewLog(store, func() time.Time { return t0 }, slog.New(slog.NewJSONHandler(&logs, nil)))
	e := valid()
	e.Detail = "the-detail-text"
	l.Record(t.Context(), e)
	out := logs.String()
	for _, want := range []string{`"level":"ERROR"`, `"msg":"audit entry not stored"`, `"action":"group.create"`, `"request_id":"req-1"`, `"err":"disk full"`, `"audit_id":"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "the-detail-text") {
		t.Errorf("log carries the detail:\n%s", out)
	}
	if l.Failures() != 1 {
		t.Errorf("Failures() = %d, want 1", l.Failures())
	}
}

func TestRecordInvalidEntryIsLoggedNotStored(t *testing.T) {
	var logs bytes.Buffer
	store := &fakeStore{t: t} // AppendAudit must not be called
	l := audit.NewLog(store, func() time.Time { return t0 }, slog.New(slog.NewTextHandler(&logs, nil)))
	e := valid()
	e.Outcome = "done"
	l.Record(t.Context(), e)
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "unknown outcome") || l.Failures() != 1 {
		t.Errorf("Failures() = %d, log:\n%s", l.Failures(), logs.String())
	}
}

func TestRecordRetriesDuplicateWithNewID(t *testing.T) {
	var got []string
	store := &fakeStore{t: t, append: func(_ context.Context, es ...audit.Entry) error {
		got = append(got, es[0].ID)
		if len(got) == 1 {
			return fmt.Errorf("%w: %s", audit.ErrDuplicate, es[0].ID)
		}
		return nil
	}}
	l := audit.NewLog(store, func() time.Time { return t0 }, nil)
	l.Record(t.Context(), valid())
	if len(got) != 2 || got[0] == got[1] || l.Failures() != 0 {
		t.Errorf("appends %v, failures %d; want a second append with a new ID", got, l.Failures())
	}
}

func TestRecordOutlivesCallerCancellation(t *testing.T) {
	type key struct{}
	ctx, cancel := context.WithCancel(context.WithValue(t.Context(), key{}, "v"))
	cancel()
	called := false
	store := &fakeStore{t: t, append: func(ctx context.Context, _ ...audit.Entry) error {
		called = true
		if ctx.Err() != nil {
			t.Errorf("store got a cancelled context: %v", ctx.Err())
		}
		if ctx.Value(key{}) != "v" {
			t.Error("store context lost the caller's values")
		}
		if d, ok := ctx.Deadline(); !ok || time.Until(d) > audit.RecordTimeout {
			t.Errorf("store context deadline %v, %v; want within RecordTimeout", d, ok)
		}
		return nil
	}}
	audit.NewLog(store, nil, nil).Record(ctx, valid())
	if !called {
		t.Fatal("entry not appended")
	}
}

func TestRecordSanitizesAndStamps(t *testing.T) {
	var stored audit.Entry
	store := &fakeStore{t: t, append: func(_ context.Context, es ...audit.Entry) error { stored = es[0]; return nil }}
	l := audit.NewLog(store, func() time.Time { return t0.In(time.FixedZone("X", 3600)) }, nil)
	e := valid()
	e.ID, e.Time = "mine", t0.Add(-time.Hour)
	e.Target = "SHIP:MOH:\x1b[31mred"
	e.Detail = "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln\n"
	e.Actor = " key:0123abcd\t"
	l.Record(t.Context(), e)
	want := valid()
	want.Target, want.Detail, want.Actor = "SHIP:MOH:?[31mred", "Authorization: Bearer [redacted-jwt]", "key:0123abcd"
	want.ID, want.Time = stored.ID, t0
	if stored != want {
		t.Errorf("stored\n%+v\nwant\n%+v", stored, want)
	}
	if stored.Time.Location() != time.UTC {
		t.Errorf("Time in %v, want UTC", stored.Time.Location())
	}
}

func TestQueryValidation(t *testing.T) {
	var calls int
	var gotLimit int
	store := &fakeStore{t: t, query: func(_ context.Context, _ audit.Filter, _ string, limit int) ([]audit.Entry, string, error) {
		calls++
		gotLimit = limit
		return nil, "", nil
	}}
	l := audit.NewLog(store, func() time.Time { return t0 }, nil)
	tests := []struct {
		name      string
		q         audit.Query
		wantLimit int // 0: invalid
	}{
		{"defaults", audit.Query{}, audit.DefaultLimit},
		{"limit 1", audit.Query{Limit: 1}, 1},
		{"limit max", audit.Query{Limit: audit.MaxLimit}, audit.MaxLimit},
		{"limit over max", audit.Query{Limit: audit.MaxLimit + 1}, 0},
		{"negative limit", audit.Query{Limit: -1}, 0},
		{"since equals until", audit.Query{Filter: audit.Filter{Since: t0, Until: t0}}, audit.DefaultLimit},
		{"since after until", audit.Query{Filter: audit.Filter{Since: t0.Add(time.Nanosecond), Until: t0}}, 0},
		{"since before 1970", audit.Query{Filter: audit.Filter{Since: time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC)}}, 0},
		{"until after 2262", audit.Query{Filter: audit.Filter{Until: time.Date(2263, 1, 1, 0, 0, 0, 0, time.UTC)}}, 0},
		{"since at the epoch", audit.Query{Filter: audit.Filter{Since: time.Unix(0, 0)}}, audit.DefaultLimit},
		{"known outcome", audit.Query{Filter: audit.Filter{Outcome: audit.Denied}}, audit.DefaultLimit},
		{"unknown outcome", audit.Query{Filter: audit.Filter{Outcome: "success"}}, 0},
		{"garbage cursor", audit.Query{Cursor: "not a cursor"}, 0},
		{"empty-decoding cursor", audit.Query{Cursor: "AA"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls, gotLimit = 0, 0
			page, err := l.Query(t.Context(), tt.q)
			if tt.wantLimit == 0 {
				if !errors.Is(err, audit.ErrInvalidFilter) || calls != 0 {
					t.Fatalf("Query = %v (store called %d times), want ErrInvalidFilter without a store call", err, calls)
				}
				return
			}
			if err != nil || gotLimit != tt.wantLimit {
				t.Fatalf("Query = %v, store limit %d; want nil, %d", err, gotLimit, tt.wantLimit)
			}
			if page.Entries == nil || page.Next != "" {
				t.Errorf("page = %#v, want empty non-nil entries and no next", page)
			}
		})
	}
}

func TestQueryStoreErrors(t *testing.T) {
	boom := errors.New("boom")
	for name, tt := range map[string]struct {
		next string
		err  error
	}{
		"store error":        {"", boom},
		"malformed position": {"not-an-id", nil},
	} {
		store := &fakeStore{t: t, query: func(context.Context, audit.Filter, string, int) ([]audit.Entry, string, error) {
			return nil, tt.next, tt.err
		}}
		_, err := audit.NewLog(store, nil, nil).Query(t.Context(), audit.Query{})
		if err == nil || errors.Is(err, audit.ErrInvalidFilter) || (tt.err != nil && !errors.Is(err, tt.err)) {
			t.Errorf("%s: Query = %v, want an internal error", name, err)
		}
	}
}

func TestPurgeUsesRetention(t *testing.T) {
	var got time.Time
	store := &fakeStore{t: t, purge: func(_ context.Context, before time.Time) (int, error) { got = before; return 3, nil }}
	l := audit.NewLog(store, func() time.Time { return t0 }, nil)
	n, err := l.Purge(t.Context(), 90*24*time.Hour)
	if err != nil || n != 3 || !got.Equal(t0.Add(-90*24*time.Hour)) {
		t.Errorf("Purge = %d, %v, store asked for before %v", n, err, got)
	}
}

func TestSanitize(t *testing.T) {
	long := strings.Repeat("é", audit.MaxFieldLen+10)
	tests := []struct{ in, want string }{
		{"", ""},
		{"SHIP:MOH:billing", "SHIP:MOH:billing"},
		{"  padded\t", "padded"},
		{"two\nlines\r\n", "two lines"},
		{"bell\a and esc\x1b[2J", "bell? and esc?[2J"},
		{"bad utf8 \xff\xfe! \xff", "bad utf8 ?! ?"},
		{"bidi \u202egnp.exe", "bidi ?gnp.exe"},
		{"zero\u200bwidth", "zero?width"},
		{"ünïcödé ✓ 名前", "ünïcödé ✓ 名前"},
		{"key gk_0123abcd_" + strings.Repeat("x", 43) + " leaked", "key gk_0123abcd_[redacted] leaked"},
		{"gk_0123abcd", "gk_0123abcd"}, // a key id alone is no secret
		{"token eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0. end", "token [redacted-jwt] end"},
		{"Authorization: Bearer abc123", "Authorization: Bearer [redacted]"},
		{"authorization=basic dXNlcjpwYXNz", "authorization=basic [redacted]"},
		{"bearer=abc.def", "bearer [redacted]"},
		{"Basic validation failed", "Basic validation failed"},
		{"bearer token expired", "bearer token expired"},
		{"BASIC Validation", "BASIC Validation"},
		{"bearer aBcdefghij", "bearer [redacted]"},
		{"Bearer " + strings.Repeat("x", 20), "Bearer [redacted]"},
		{strings.Repeat("a", audit.MaxFieldLen), strings.Repeat("a", audit.MaxFieldLen)},
		{strings.Repeat("a", audit.MaxFieldLen+1), strings.Repeat("a", audit.MaxFieldLen-1) + "…"},
		{long, strings.Repeat("é", audit.MaxFieldLen-1) + "…"},
		{strings.Repeat("b", 1<<20), strings.Repeat("b", audit.MaxFieldLen-1) + "…"},
	}
	for _, tt := range tests {
		if got := audit.Sanitize(tt.in); got != tt.want {
			t.Errorf("Sanitize(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got := audit.Sanitize(audit.Sanitize(tt.in)); got != audit.Sanitize(tt.in) {
			t.Errorf("Sanitize not idempotent on %q", tt.in)
		}
	}
}

func TestValidateNamesFieldWithoutQuotingIt(t *testing.T) {
	e := valid()
	e.ID, e.Time = audit.MakeID(t0, 1), t0
	if err := e.Validate(); err != nil {
		t.Fatalf("valid entry: %v", err)
	}
	secret := "gk_0123abcd_" + strings.Repeat("s", 43)
	e.Detail = secret
	err := e.Validate()
	if !errors.Is(err, audit.ErrInvalidEntry) || strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "detail") {
		t.Errorf("Validate = %v", err)
	}
}

// ExampleLog shows the Log as the HTTP edge and the dispatcher use it.
func ExampleLog() {
	now := time.Date(2026, 3, 2, 9, 15, 0, 0, time.UTC)
	l := audit.NewLog(newMemStore(), func() time.Time { return now }, nil)
	ctx := context.Background()

	// The API accepted a create and queued its operation...
	l.Record(ctx, audit.Entry{
		Actor: "key:0123abcd", Role: "project", Tenant: "SHIP", Project: "MOH",
		Action: "group.create", Target: "SHIP:MOH:billing", Outcome: audit.Accepted,
		Status: 202, RequestID: "req-1", OperationID: "op-1",
	})
	now = now.Add(time.Second)
	// ...and the dispatcher later recorded what TechPass said.
	l.Record(ctx, audit.Entry{
		Actor: audit.System, Role: audit.System, Tenant: "SHIP", Project: "MOH",
		Action: "operation.succeeded", Target: "SHIP:MOH:billing", Outcome: audit.Succeeded,
		OperationID: "op-1",
	})

	// A tenant admin pages through its tenant's log, newest first.
	q := audit.Query{Filter: audit.Filter{Tenant: "SHIP"}, Limit: 1}
	for {
		page, err := l.Query(ctx, q)
		if err != nil {
			panic(err)
		}
		for _, e := range page.Entries {
			fmt.Println(e.Time.Format(time.TimeOnly), e.Actor, e.Action, e.Outcome)
		}
		if page.Next == "" {
			break
		}
		q.Cursor = page.Next
	}
	// Output:
	// 09:15:01 system operation.succeeded succeeded
	// 09:15:00 key:0123abcd group.create accepted
}
