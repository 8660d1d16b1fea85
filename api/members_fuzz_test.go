package api

import (
	"testing"
)

// The seed corpora of these fuzz tests are in testdata/fuzz/<FuzzName>; go
// test runs them as ordinary tests. Run one fuzzer with, for example,
//
//	go test -run='^$' -fuzz='^FuzzParseETag$' -fuzztime=20s ./api/
//
// Inputs that hit a known, reported bug are skipped by a check naming it;
// remove the check with the fix and the corpus entry becomes a regression
// test.

// FuzzETagRoundTrip checks that the tag of every revision but 0 (which no
// stored group has) parses back to it.
func FuzzETagRoundTrip(f *testing.F) {
	f.Fuzz(func(t *testing.T, rev uint64) {
		got, ok := parseETag(etag(rev))
		if ok != (rev > 0) || (ok && got != rev) {
			t.Fatalf("parseETag(etag(%d)) = %d, %v", rev, got, ok)
		}
	})
}

// FuzzParseETag feeds arbitrary If-Match entries to parseETag: it never
// panics, and accepts a tag only in the exact spelling etag gives a
// revision, so weak tags, other quoting and other junk are refused (a
// strong comparison, RFC 9110 section 8.8.3.2).
func FuzzParseETag(f *testing.F) {
	f.Fuzz(func(t *testing.T, tag string) {
		rev, ok := parseETag(tag)
		if !ok {
			return
		}
		if rev == 0 || tag != etag(rev) {
			t.Fatalf("parseETag(%q) accepted revision %d, whose tag is %s", tag, rev, etag(rev))
		}
	})
}
