package pgstore

import (
	"context"
	"errors"
	"sync"

	"github.com/groupgate/groupgate/audit"
)

// auditBatchCalls bounds the calls one group commit of the audit log
// takes; the rest wait for the next.
const auditBatchCalls = 256

// auditBatchTimeout bounds one batch's write, whatever the contexts of the
// calls in it: no longer than audit.Log.Record waits for it.
const auditBatchTimeout = audit.RecordTimeout

// auditBatcher makes a group commit of concurrent audit appends. Every
// request is audited synchronously (audit.Log.Record returns once its
// entry is durable); written one by one, the audit entries would cost a
// transaction and a commit per request on top of the request's own. So
// each call joins a queue, and the first call to find no write under way
// starts a writer, which writes the queue's calls in one transaction, then
// the calls that came meanwhile (up to auditBatchCalls at a time), until
// none are left. Under no load a batch is one call, as before; under load
// one commit serves many requests.
//
// A batch is all or none, but each call must be too: when a batch fails
// with ErrDuplicate (an ID taken, which only two Logs issuing the same ID
// can cause), its calls are written again one at a time, so that only
// the call holding the duplicate fails. Any other failure fails every call
// of the batch, each with the batch's error.
type auditBatcher struct {
	mu      sync.Mutex
	waiting []*auditCall
	writing bool
}

// auditCall is one AppendAudit waiting for its batch.
type auditCall struct {
	entries []audit.Entry
	done    chan error // buffered: the writer never blocks on a caller gone
}

// append queues entries and returns their write's error, or ctx's if it
// ends first (the entries may then yet be written). insert writes one
// batch in one transaction.
func (b *auditBatcher) append(ctx context.Context, entries []audit.Entry, insert func(context.Context, []audit.Entry) error) error {
	c := &auditCall{entries: entries, done: make(chan error, 1)}
	b.mu.Lock()
	b.waiting = append(b.waiting, c)
	start := !b.writing
	b.writing = true
	b.mu.Unlock()
	if start {
		go b.drain(insert)
	}
	select {
	case err := <-c.done:
		return err
	case <-ctx.Done():
		select { // a write that has answered wins over a ctx ended meanwhile
		case err := <-c.done:
			return err
		default:
			return ctx.Err()
		}
	}
}

// drain writes the waiting calls, a batch at a time, until none are left.
func (b *auditBatcher) drain(insert func(context.Context, []audit.Entry) error) {
	for b.next(insert) {
	}
}

// next writes the next batch of waiting calls and reports whether more
// are waiting; when none are, the writing ends (under the same lock as new
// calls check it, so none is left waiting without a writer).
func (b *auditBatcher) next(insert func(context.Context, []audit.Entry) error) bool {
	b.mu.Lock()
	n := min(len(b.waiting), auditBatchCalls)
	batch := b.waiting[:n:n]
	b.waiting = b.waiting[n:]
	b.mu.Unlock()
	if n > 0 {
		b.write(batch, insert)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.waiting) == 0 {
		b.waiting = nil // let the written calls go
		b.writing = false
		return false
	}
	return true
}

// write writes one batch and answers its calls.
// Its context is its own: the batch outlives any one caller's.
func (b *auditBatcher) write(batch []*auditCall, insert func(context.Context, []audit.Entry) error) {
	ctx, cancel := context.WithTimeout(context.Background(), auditBatchTimeout)
	defer cancel()
	if len(batch) == 1 {
		batch[0].done <- insert(ctx, batch[0].entries)
		return
	}
	var all []audit.Entry
	for _, c := range batch {
		all = append(all, c.entries...)
	}
	err := insert(ctx, all)
	if errors.Is(err, audit.ErrDuplicate) {
		for _, c := range batch {
			c.done <- insert(ctx, c.entries)
		}
		return
	}
	for _, c := range batch {
		c.done <- err
	}
}
