package pgstore

import (
	"context"
	"testing"
	"time"

	"github.com/groupgate/groupgate/internal/testkit"
)

// blockingRead is a read of the generation that returns value once told.
type blockingRead struct {
	started chan struct{}
	release chan uint64
}

func newBlockingRead() *blockingRead {
	return &blockingRead{started: make(chan struct{}), release: make(chan uint64)}
}

func (b *blockingRead) read(context.Context) (uint64, error) {
	close(b.started)
	return <-b.release, nil
}

// getAsync runs c.get with read and returns its answer on a channel.
func getAsync(c *generationCache, read func(context.Context) (uint64, error)) <-chan uint64 {
	out := make(chan uint64, 1)
	go func() {
		v, _ := c.get(context.Background(), read)
		out <- v
	}()
	return out
}

// TestGenerationCacheOverlappingReads: of two overlapping reads finishing
// out of order, the cache keeps the larger value, so no caller sees the
// generation go down; a read that overlapped an invalidation is not kept.
func TestGenerationCacheOverlappingReads(t *testing.T) {
	clk := testkit.NewClock(time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC))
	c := &generationCache{ttl: time.Second, now: clk.Now}

	first, second := newBlockingRead(), newBlockingRead()
	a := getAsync(c, first.read)
	<-first.started
	clk.Advance(time.Millisecond)
	b := getAsync(c, second.read)
	<-second.started
	first.release <- 11 // the earlier read saw a later commit
	if v := <-a; v != 11 {
		t.Fatalf("first read: %d, want 11", v)
	}
	second.release <- 10 // the later read's snapshot came before it
	if v := <-b; v != 11 {
		t.Fatalf("second read answered %d after 11 was cached: the generation went down", v)
	}
	if v, _ := c.get(context.Background(), func(context.Context) (uint64, error) { t.Fatal("read within the TTL"); return 0, nil }); v != 11 {
		t.Fatalf("cached: %d, want 11", v)
	}

	// A read under way when the value is dropped is not kept.
	clk.Advance(time.Second)
	slow := newBlockingRead()
	s := getAsync(c, slow.read)
	<-slow.started
	c.invalidate()
	slow.release <- 12
	<-s
	reads := 0
	if v, _ := c.get(context.Background(), func(context.Context) (uint64, error) { reads++; return 13, nil }); v != 13 || reads != 1 {
		t.Fatalf("after a read that overlapped an invalidation: %d with %d reads, want 13 read afresh", v, reads)
	}
}

// TestGenerationCacheNeverGoesDown: a read that began before an
// invalidation and saw a later commit than the read cached after it still
// sets the floor of every later answer.
func TestGenerationCacheNeverGoesDown(t *testing.T) {
	clk := testkit.NewClock(time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC))
	c := &generationCache{ttl: time.Second, now: clk.Now}
	early := newBlockingRead()
	e := getAsync(c, early.read)
	<-early.started
	c.invalidate() // a change committed; the early read is not kept...
	if v, _ := c.get(context.Background(), func(context.Context) (uint64, error) { return 20, nil }); v != 20 {
		t.Fatalf("a read after the invalidation: %d, want 20", v) // ...this one is
	}
	early.release <- 21 // ...though it saw a later commit still
	if v := <-e; v != 21 {
		t.Fatalf("the early read: %d, want 21", v)
	}
	if v, _ := c.get(context.Background(), func(context.Context) (uint64, error) { t.Fatal("read within the TTL"); return 0, nil }); v != 21 {
		t.Fatalf("after 21 was answered: %d, want at least 21", v)
	}
}
