package pgstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/groupgate/groupgate/audit"
	"github.com/groupgate/groupgate/internal/testkit"
)

// TestAuditBatcherGroupsWaitingCalls: calls that come while a batch is
// being written are written together in the next one, each call answered
// with its batch's outcome; a batch failing with ErrDuplicate is written
// again call by call, so only the call holding the duplicate fails.
func TestAuditBatcherGroupsWaitingCalls(t *testing.T) {
	var b auditBatcher
	release := make(chan struct{})
	var mu sync.Mutex
	var batches [][]string
	stored := map[string]bool{}
	insert := func(_ context.Context, es []audit.Entry) error {
		mu.Lock()
		first := len(batches) == 0
		ids := make([]string, len(es))
		for i, e := range es {
			ids[i] = e.ID
		}
		batches = append(batches, ids)
		mu.Unlock()
		if first {
			<-release // hold the first batch while the others queue
		}
		mu.Lock()
		defer mu.Unlock()
		seen := map[string]bool{}
		for _, id := range ids {
			if stored[id] || seen[id] {
				return fmt.Errorf("%w: %s", audit.ErrDuplicate, id)
			}
			seen[id] = true
		}
		for _, id := range ids {
			stored[id] = true
		}
		return nil
	}
	call := func(id string) <-chan error {
		done := make(chan error, 1)
		go func() { done <- b.append(t.Context(), []audit.Entry{{ID: id}}, insert) }()
		return done
	}
	first := call("e0")
	testkit.Eventually(t, 5*time.Second, "the first batch", func() bool { mu.Lock(); defer mu.Unlock(); return len(batches) == 1 })
	var rest []<-chan error
	for i := 1; i <= 10; i++ {
		rest = append(rest, call(fmt.Sprintf("e%d", i)))
	}
	dup := call("e3") // a duplicate among the waiting calls
	testkit.Eventually(t, 5*time.Second, "11 calls waiting", func() bool { b.mu.Lock(); defer b.mu.Unlock(); return len(b.waiting) == 11 })
	close(release)
	if err := <-first; err != nil {
		t.Fatalf("first call: %v", err)
	}
	dups := 0
	for i, c := range append(rest, dup) {
		err := <-c
		switch {
		case errors.Is(err, audit.ErrDuplicate) && (i == 2 || i == 10): // one of the two e3 calls
			dups++
		case err != nil:
			t.Errorf("call %d: %v", i+1, err)
		}
	}
	if dups != 1 {
		t.Errorf("%d of the two calls of e3 failed with ErrDuplicate, want 1", dups)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(batches) < 2 || len(batches[1]) != 11 {
		t.Fatalf("batches %v: want the 11 waiting calls written together after the first", batches)
	}
	if want := 2 + 11; len(batches) != want { // then one by one, after the duplicate
		t.Errorf("%d batches, want %d: %v", len(batches), want, batches)
	}
	if len(stored) != 11 {
		t.Errorf("%d entries stored, want 11", len(stored))
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.writing || len(b.waiting) != 0 {
		t.Errorf("after every call: writing %v, %d waiting", b.writing, len(b.waiting))
	}
}

// TestWakesCoalesce: tenants enqueued while a signal is being sent are
// sent together next, each once; close sends what is pending, and nothing
// is taken after it.
func TestWakesCoalesce(t *testing.T) {
	release := make(chan struct{})
	sent := make(chan []string, 10)
	w := &wakes{log: slog.New(slog.DiscardHandler), send: func(_ context.Context, tenants []string) error {
		sent <- tenants
		if tenants[0] == "FIRST" {
			<-release
		}
		return nil
	}}
	w.add("FIRST")
	if got := <-sent; !slices.Equal(got, []string{"FIRST"}) {
		t.Fatalf("first send %v", got)
	}
	for _, tn := range []string{"SHIP", "DOCK", "SHIP", "SHIP"} {
		w.add(tn)
	}
	close(release)
	if got := <-sent; !slices.Equal(got, []string{"DOCK", "SHIP"}) {
		t.Fatalf("second send %v, want DOCK and SHIP once each", got)
	}
	testkit.Eventually(t, 5*time.Second, "the sender to stop", func() bool { w.mu.Lock(); defer w.mu.Unlock(); return !w.sending })
	w.add("PENDING") // sent at once...
	got := <-sent
	testkit.Eventually(t, 5*time.Second, "the sender to stop again", func() bool { w.mu.Lock(); defer w.mu.Unlock(); return !w.sending })
	w.mu.Lock()
	w.pending["AT-CLOSE"] = true // ...and this one only by close
	w.sending = true             // as if a send were under way
	w.mu.Unlock()
	if !slices.Equal(got, []string{"PENDING"}) {
		t.Fatalf("third send %v", got)
	}
	w.close()
	if got := <-sent; !slices.Equal(got, []string{"AT-CLOSE"}) {
		t.Fatalf("close sent %v, want what was pending", got)
	}
	w.add("LATE")
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.pending) != 0 {
		t.Fatalf("%d tenants pending after close", len(w.pending))
	}
}
