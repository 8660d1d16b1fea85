package boltstore

import (
	"context"
	"errors"

	bolt "go.etcd.io/bbolt"
)

// ErrClosed is returned by writes after Close.
var ErrClosed = errors.New("store closed")

// maxBatch bounds how many writers share one transaction.
const maxBatch = 256

// writeReq is one writer waiting for the committer.
type writeReq struct {
	fn   func(*bolt.Tx) error
	err  error
	done chan struct{}
}

// write runs fn in a write transaction and returns once it is durable.
//
// Writers that arrive while a transaction commits share the next one (group
// commit): one fsync for all of them, with no timer, so a lone writer pays
// one commit and 64 concurrent writers pay about two. fn may run more than
// once (see commit), so it must derive everything from tx and reset any
// state it accumulates. The write is not abandoned when ctx ends: it may
// already be committing, and its caller must learn the outcome.
func (s *Store) write(ctx context.Context, fn func(*bolt.Tx) error) error {
	req := &writeReq{fn: fn, done: make(chan struct{})}
	select {
	case s.writes <- req:
	case <-s.closing:
		return ErrClosed
	}
	<-req.done
	return req.err
}

// committer takes every writer waiting and commits them together, until
// Close.
func (s *Store) committer() {
	defer close(s.stopped)
	for {
		var batch []*writeReq
		select {
		case r := <-s.writes:
			batch = append(batch, r)
		case <-s.closing:
			return
		}
	more:
		for len(batch) < maxBatch {
			select {
			case r := <-s.writes:
				batch = append(batch, r)
			default:
				break more
			}
		}
		s.commit(batch)
	}
}

// commit runs a batch in one transaction. If one writer's function fails,
// the transaction is rolled back, that writer is run alone (so it gets its
// own error and nothing it half-wrote survives), and the rest are retried
// together.
func (s *Store) commit(batch []*writeReq) {
	for len(batch) > 0 {
		failed := -1
		err := s.db.Update(func(tx *bolt.Tx) error {
			for i, r := range batch {
				if err := r.fn(tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed < 0 || len(batch) == 1 {
			for _, r := range batch {
				r.err = err
				close(r.done)
			}
			return
		}
		r := batch[failed]
		batch = append(batch[:failed:failed], batch[failed+1:]...)
		r.err = s.db.Update(r.fn)
		close(r.done)
	}
}
