package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

// RecordTimeout bounds how long Record waits for a store that honours its
// context. (boltstore does not abandon a write once queued, but a write
// there is one shared commit.)
const RecordTimeout = 5 * time.Second

// recordAttempts is how many IDs Record tries when the store reports a
// duplicate, which takes two Logs issuing the same ID.
const recordAttempts = 3

// Log records and reads audit entries. It is safe for concurrent use; use one
// Log per process, so that its IDs are strictly increasing. Create it with
// NewLog; the zero Log is not usable.
type Log struct {
	store  Store
	now    func() time.Time
	logger *slog.Logger
	ids    idGen
	failed atomic.Uint64
}

// NewLog returns a Log over store, taking the time from now (time.Now if
// nil) and reporting entries it could not store to logger (discarded if
// nil).
func NewLog(store Store, now func() time.Time, logger *slog.Logger) *Log {
	if store == nil {
		panic("audit: NewLog with a nil Store")
	}
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Log{store: store, now: now, logger: logger}
}

// Record stores e, with a new ID and Time, after passing every string field
// through Sanitize.
//
// Record is synchronous: when it returns, the entry is durable (for
// boltstore, committed and fsynced together with whatever other writes were
// waiting). It never fails the caller: if the entry is invalid or cannot be
// stored, Record logs the problem at error level (every field but Detail,
// which is free text) and counts it in Failures. It ignores ctx's
// cancellation, so a client that hangs up does not erase the record of its
// call, but keeps ctx's values and waits at most RecordTimeout for a store
// that honours contexts.
func (l *Log) Record(ctx context.Context, e Entry) {
	for _, f := range e.fields() {
		*f.v = Sanitize(*f.v)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), RecordTimeout)
	defer cancel()
	var err error
	for range recordAttempts {
		e.ID, e.Time = l.ids.next(l.now())
		if err = e.Validate(); err != nil {
			break
		}
		if err = l.store.AppendAudit(ctx, e); !errors.Is(err, ErrDuplicate) {
			break
		}
	}
	if err == nil {
		return
	}
	l.failed.Add(1)
	l.logger.LogAttrs(ctx, slog.LevelError, "audit entry not stored",
		slog.String("audit_id", e.ID), slog.Time("time", e.Time),
		slog.String("actor", e.Actor), slog.String("role", e.Role),
		slog.String("tenant", e.Tenant), slog.String("project", e.Project),
		slog.String("action", e.Action), slog.String("target", e.Target),
		slog.String("outcome", e.Outcome), slog.Int("status", e.Status),
		slog.String("request_id", e.RequestID), slog.String("operation_id", e.OperationID),
		slog.String("err", err.Error()))
}

// Failures returns how many entries Record could not store since the Log was
// made: for a metric or a health check.
func (l *Log) Failures() uint64 { return l.failed.Load() }

// Query returns one page of the entries that match q, newest first.
//
// It returns an error wrapping ErrInvalidFilter if q.Limit is negative or
// above MaxLimit, Since or Until lies outside 1970-2262, Since is after
// Until, Outcome is set but not one of the outcome constants, or the cursor
// is malformed, altered or was issued for another filter. Other errors come
// from the store.
func (l *Log) Query(ctx context.Context, q Query) (Page, error) {
	limit, before, err := q.validate()
	if err != nil {
		return Page{}, err
	}
	entries, next, err := l.store.QueryAudit(ctx, q.Filter, before, limit)
	if err != nil {
		return Page{}, fmt.Errorf("query audit log: %w", err)
	}
	p := Page{Entries: entries}
	if p.Entries == nil {
		p.Entries = []Entry{}
	}
	if next != "" {
		if p.Next, err = encodeCursor(q.Filter, next); err != nil {
			return Page{}, err
		}
	}
	return p, nil
}

// validate checks q and returns the limit and the position to continue
// before.
func (q Query) validate() (limit int, before string, err error) {
	switch {
	case q.Limit < 0 || q.Limit > MaxLimit:
		return 0, "", fmt.Errorf("%w: limit must be from 1 to %d", ErrInvalidFilter, MaxLimit)
	case q.Limit == 0:
		limit = DefaultLimit
	default:
		limit = q.Limit
	}
	for _, t := range []struct {
		name string
		t    time.Time
	}{{"since", q.Since}, {"until", q.Until}} {
		if !t.t.IsZero() && (t.t.Before(minTime) || t.t.After(maxTime)) {
			return 0, "", fmt.Errorf("%w: %s must be from 1970 to 2262", ErrInvalidFilter, t.name)
		}
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && q.Since.After(q.Until) {
		return 0, "", fmt.Errorf("%w: since is after until", ErrInvalidFilter)
	}
	if q.Outcome != "" && !KnownOutcome(q.Outcome) {
		return 0, "", fmt.Errorf("%w: outcome must be one of %s, %s, %s, %s, %s", ErrInvalidFilter,
			Accepted, Succeeded, Failed, Denied, Cancelled)
	}
	if q.Cursor != "" {
		if before, err = decodeCursor(q.Filter, q.Cursor); err != nil {
			return 0, "", fmt.Errorf("%w: %w", ErrInvalidFilter, err)
		}
	}
	return limit, before, nil
}

// Purge removes the entries older than retention and returns how many. It
// returns an error if retention is not positive, or the store's error with
// the count removed so far.
func (l *Log) Purge(ctx context.Context, retention time.Duration) (int, error) {
	if retention <= 0 {
		return 0, fmt.Errorf("audit retention must be positive, got %v", retention)
	}
	n, err := l.store.PurgeAudit(ctx, l.now().Add(-retention))
	if err != nil {
		return n, fmt.Errorf("purge audit log: %w", err)
	}
	return n, nil
}
