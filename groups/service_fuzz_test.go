package groups

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// The seed corpora of these fuzz tests are in testdata/fuzz/<FuzzName>; go
// test runs them as ordinary tests. Run one fuzzer with, for example,
//
//	go test -run='^$' -fuzz='^FuzzPageQuery$' -fuzztime=20s -fuzzminimizetime=100x ./groups/
//
// (Minimizing a long new input of FuzzFoldUsers takes a while at the
// default -fuzzminimizetime=60s, and the fuzzer looks stalled meanwhile.)
//
// Inputs that hit a known, reported bug are skipped by a check naming it;
// remove the check with the fix and the corpus entry becomes a regression
// test.

// wantFuzzValidationError fails t unless err is a *ValidationError wrapping
// ErrInvalid, the only error the parsers and validators here may return.
func wantFuzzValidationError(t *testing.T, err error) {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) || !errors.Is(err, ErrInvalid) || len(ve.Fields) == 0 {
		t.Fatalf("error %v (%T) is not a *ValidationError wrapping ErrInvalid", err, err)
	}
}

// FuzzPageQuery feeds arbitrary list queries, cursors included, to
// pageQuery: it never panics, refuses with a *ValidationError, and what it
// accepts has a limit in bounds, the lower-cased prefix, and an After that
// the canonical cursor for these filters gives back.
func FuzzPageQuery(f *testing.F) {
	f.Fuzz(func(t *testing.T, cursor, prefix, project, group string, limit int) {
		pq, err := pageQuery(ListQuery{Prefix: prefix, Cursor: cursor, Limit: limit}, project, group)
		if err != nil {
			wantFuzzValidationError(t, err)
			if pq != (PageQuery{}) {
				t.Fatalf("refused query returned %+v", pq)
			}
			return
		}
		switch {
		case limit == 0 && pq.Limit != DefaultPageLimit, limit != 0 && pq.Limit != limit:
			t.Fatalf("limit %d became %d", limit, pq.Limit)
		case pq.Limit < 1 || pq.Limit > MaxPageLimit:
			t.Fatalf("accepted limit %d outside 1-%d", pq.Limit, MaxPageLimit)
		case pq.Prefix != strings.ToLower(prefix) || len(pq.Prefix) > 254:
			t.Fatalf("prefix %q became %q", prefix, pq.Prefix)
		case pq.Project != project:
			t.Fatalf("project %q became %q", project, pq.Project)
		case (cursor == "") != (pq.After == ""):
			t.Fatalf("cursor %q gave After %q", cursor, pq.After)
		}
		if cursor == "" {
			return
		}
		next := nextCursor(pq.After, pq, group)
		again, err := pageQuery(ListQuery{Prefix: prefix, Cursor: next, Limit: limit}, project, group)
		if err != nil || again != pq {
			t.Fatalf("re-encoded cursor for After %q gave %+v, %v; want %+v", pq.After, again, err, pq)
		}
	})
}

// FuzzCursorRoundTrip makes the cursor that continues after entry after in
// a list with filters (prefix, project, group), then presents it with
// filters (prefix2, project2, group2). With the same filters (prefix and
// group compare case-insensitively) it gives back after; with any other
// filters it is refused.
//
// The lists call nextCursor with valid UTF-8 only, with fields within
// their limits (validated or upper-cased
// projects, entries read from JSON), and JSON cannot carry anything else, so
// other input is out of scope.
func FuzzCursorRoundTrip(f *testing.F) {
	f.Fuzz(func(t *testing.T, after, prefix, project, group, prefix2, project2, group2 string) {
		pq, err := pageQuery(ListQuery{Prefix: prefix}, project, group)
		if err != nil || after == "" || !utf8.ValidString(after) || !utf8.ValidString(project) {
			return // no list to continue, no entry to continue after, or out of scope
		}
		// The real fields are bounded: a project has at most 32 characters,
		// a group 64, and an entry's place (a member's e-mail and id) a few
		// hundred bytes.
		if len(project) > 32 || len(group) > 64 || !utf8.ValidString(group) || len(after) > 600 {
			return
		}
		cursor := nextCursor(after, pq, group)
		back, err := pageQuery(ListQuery{Prefix: prefix, Cursor: cursor}, project, group)
		if err != nil || back.After != after {
			t.Fatalf("cursor %q after %q came back as %q, %v", cursor, after, back.After, err)
		}
		same := strings.ToLower(prefix2) == pq.Prefix && project2 == project && strings.ToLower(group2) == strings.ToLower(group)
		other, err := pageQuery(ListQuery{Prefix: prefix2, Cursor: cursor}, project2, group2)
		switch {
		case same && (err != nil || other.After != after):
			t.Fatalf("cursor refused, or After %q, with the same filters: %v", other.After, err)
		case !same && err == nil:
			t.Fatalf("cursor for (%q, %q, %q) accepted for (%q, %q, %q)", prefix, project, group, prefix2, project2, group2)
		case !same:
			wantFuzzValidationError(t, err)
		}
	})
}

// FuzzNormalizeUser checks NormalizeUser on arbitrary identifiers: it never
// panics, refuses with a *ValidationError, and what it accepts is trimmed,
// lower case, and accepted unchanged on a second pass.
func FuzzNormalizeUser(f *testing.F) {
	s := NewService(ServiceConfig{}) // NormalizeUser needs only the validator
	f.Fuzz(func(t *testing.T, id string) {
		n, err := s.NormalizeUser("user", id)
		if err != nil {
			wantFuzzValidationError(t, err)
			return
		}
		if n == "" || n != strings.TrimSpace(n) || n != strings.ToLower(n) {
			t.Fatalf("NormalizeUser(%q) = %q: empty, padded or not lower case", id, n)
		}
		if len(n) > 254 {
			t.Fatalf("NormalizeUser(%q) is %d bytes, over its own limit", id, len(n))
		}
		if again, err := s.NormalizeUser("user", n); err != nil || again != n {
			t.Fatalf("NormalizeUser(%q) = %q, but NormalizeUser(%q) = %q, %v", id, n, n, again, err)
		}
	})
}

// FuzzFoldUsers folds arbitrary member changes, each side a list of
// identifiers separated by commas: it never panics, refuses with a
// *ValidationError, and an accepted change is lower case and trimmed, has no duplicate,
// names no user on both sides, and names 1 to MaxUsersPerChange users.
func FuzzFoldUsers(f *testing.F) {
	s := NewService(ServiceConfig{})
	split := func(list string) []string {
		if list == "" {
			return nil
		}
		return strings.Split(list, ",")
	}
	f.Fuzz(func(t *testing.T, addList, removeList string) {
		add, remove, err := s.foldUsers(split(addList), split(removeList))
		if err != nil {
			wantFuzzValidationError(t, err)
			return
		}
		if n := len(add) + len(remove); n < 1 || n > MaxUsersPerChange {
			t.Fatalf("accepted a change of %d users", n)
		}
		for _, side := range [][]string{add, remove} {
			for i, id := range side {
				if id == "" || id != strings.ToLower(strings.TrimSpace(id)) {
					t.Fatalf("folded identifier %q is not normalized", id)
				}
				if slices.Contains(side[i+1:], id) {
					t.Fatalf("%q appears twice in %q", id, side)
				}
			}
		}
		for _, id := range add {
			if slices.Contains(remove, id) {
				t.Fatalf("%q is both added and removed", id)
			}
		}
	})
}
