package ratelimit

import (
	"fmt"
	"testing"
	"time"
)

// TestTake: a caller spends its burst, is refused with the wait for its
// next token, and gets one when the time has passed; another caller has
// its own bucket.
func TestTake(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := New(2, 3, func() time.Time { return now })
	for i := range 3 {
		ok, remaining, _ := l.take("a", now)
		if !ok || remaining != 2-i {
			t.Fatalf("request %d: ok %v, remaining %d", i, ok, remaining)
		}
	}
	ok, _, wait := l.take("a", now)
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("over the burst: ok %v, wait %v; want a refusal for 500ms", ok, wait)
	}
	if ok, _, _ := l.take("b", now); !ok {
		t.Fatal("another caller shares the first one's bucket")
	}
	if ok, _, _ := l.take("a", now.Add(500*time.Millisecond)); !ok {
		t.Fatal("refused after its next token was due")
	}
}

// TestTakeBounded: a flood of new callers beyond maxLimiters shares one
// bucket, so the limiter's state stays bounded; idle callers are dropped.
func TestTakeBounded(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := New(1, 1, func() time.Time { return now })
	for i := range maxLimiters + 10 {
		l.take(fmt.Sprint("caller-", i), now)
	}
	if n := len(l.limiters); n != maxLimiters+1 {
		t.Fatalf("%d buckets, want %d (the shared one included)", n, maxLimiters+1)
	}
	l.take("late", now.Add(11*time.Minute))
	if n := len(l.limiters); n != 1 {
		t.Errorf("%d buckets after every caller went idle, want 1", n)
	}
}
