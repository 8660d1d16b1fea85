package audit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Errors returned by this package and by Store implementations, wrapped with
// context. The HTTP edge maps ErrInvalidFilter to 400; the others mean a bug
// in the caller or the backend and are internal errors.
var (
	// ErrInvalidFilter means a query's filter, limit or cursor is unusable:
	// a limit out of bounds, Since after Until, an unknown outcome, or a
	// cursor that is malformed, altered or issued for another filter.
	ErrInvalidFilter = errors.New("invalid audit filter")
	// ErrInvalidEntry means an entry breaks a rule of Entry.Validate.
	ErrInvalidEntry = errors.New("invalid audit entry")
	// ErrDuplicate means an entry with the same ID is already stored.
	ErrDuplicate = errors.New("duplicate audit entry id")
)

// Outcomes of an audited event.
const (
	// Accepted: a call was accepted; for a queued write, its operation was
	// queued (the upstream outcome is recorded later).
	Accepted = "accepted"
	// Succeeded: a call or an upstream operation completed.
	Succeeded = "succeeded"
	// Failed: a call or an upstream operation failed.
	Failed = "failed"
	// Denied: authentication or authorization refused a call.
	Denied = "denied"
	// Cancelled: a queued operation was cancelled.
	Cancelled = "cancelled"
)

// KnownOutcome reports whether s is one of the outcome constants.
func KnownOutcome(s string) bool {
	switch s {
	case Accepted, Succeeded, Failed, Denied, Cancelled:
		return true
	}
	return false
}

// System is the Actor and Role of entries the service makes on its own, such
// as the dispatcher recording an upstream outcome.
const System = "system"

// Entry is one accountable event. It never holds a secret, a key, a token or
// a request body.
//
// The zero Entry is not valid; callers fill Actor, Action and Outcome (and
// whatever else applies) and hand it to Log.Record, which sets ID and Time.
type Entry struct {
	// ID is assigned by the Log: unique, and sorting IDs as strings sorts
	// entries by time (see the package documentation).
	ID string
	// Time is the instant encoded in ID, in UTC.
	Time time.Time
	// Actor is who acted: "key:<key id>", "jwt:<issuer>#<subject>", System,
	// or "anonymous" for a call denied before authentication.
	Actor string
	// Role is the actor's role: operator, tenant-admin, project or System;
	// empty if unknown.
	Role string
	// Tenant and Project acted in; either may be empty (an operator action
	// outside any tenant, a tenant-level action).
	Tenant  string
	Project string
	// Action is what was done, lower-case and dotted: "group.create",
	// "group.delete", "operation.cancel", "operation.succeeded",
	// "operation.failed", "key.create", "key.revoke", "tenant.update", ...
	Action string
	// Target is what was acted on: a group name such as "SHIP:MOH:billing",
	// a key id, a tenant name.
	Target string
	// Outcome is one of Accepted, Succeeded, Failed, Denied, Cancelled.
	Outcome string
	// Status is the HTTP status of a call; 0 for an upstream outcome.
	Status int
	// RequestID correlates the entry with the request log.
	RequestID string
	// OperationID names the queued operation the entry concerns.
	OperationID string
	// Detail is a short reason, such as a problem title; never a request
	// body or an upstream response.
	Detail string
}

// MaxActionLen bounds Action.
const MaxActionLen = 64

// Validate checks the rules every stored entry keeps, returning an error
// wrapping ErrInvalidEntry that names the first broken one:
//
//   - ID is well-formed (ParseID) and Time is exactly its instant;
//   - Actor is set; Action is set, at most MaxActionLen bytes of [a-z0-9._-];
//     Outcome is one of the outcome constants; Status is 0 or 100-599;
//   - every string field is unchanged by Sanitize: printable, at most
//     MaxFieldLen runes, no secret-shaped text.
func (e Entry) Validate() error {
	at, _, err := ParseID(e.ID)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidEntry, err)
	}
	if !e.Time.Equal(at) {
		return fmt.Errorf("%w: time %s is not the instant of id %s (%s)", ErrInvalidEntry,
			e.Time.Format(time.RFC3339Nano), e.ID, at.Format(time.RFC3339Nano))
	}
	if e.Actor == "" {
		return fmt.Errorf("%w: actor is required", ErrInvalidEntry)
	}
	if e.Action == "" || len(e.Action) > MaxActionLen || strings.Trim(e.Action, "abcdefghijklmnopqrstuvwxyz0123456789._-") != "" {
		return fmt.Errorf("%w: action %q must be 1-%d characters of a-z, 0-9, '.', '_', '-'", ErrInvalidEntry, Sanitize(e.Action), MaxActionLen)
	}
	if !KnownOutcome(e.Outcome) {
		return fmt.Errorf("%w: unknown outcome %q", ErrInvalidEntry, Sanitize(e.Outcome))
	}
	if e.Status != 0 && (e.Status < 100 || e.Status > 599) {
		return fmt.Errorf("%w: status %d is not an HTTP status", ErrInvalidEntry, e.Status)
	}
	for _, f := range e.fields() {
		if Sanitize(*f.v) != *f.v {
			// The value is not quoted: it may be what Sanitize would redact.
			return fmt.Errorf("%w: %s is not sanitized", ErrInvalidEntry, f.name)
		}
	}
	return nil
}

type field struct {
	name string
	v    *string
}

// fields returns the free-text fields, which Sanitize cleans.
func (e *Entry) fields() []field {
	return []field{
		{"actor", &e.Actor}, {"role", &e.Role}, {"tenant", &e.Tenant}, {"project", &e.Project},
		{"action", &e.Action}, {"target", &e.Target}, {"outcome", &e.Outcome},
		{"request id", &e.RequestID}, {"operation id", &e.OperationID}, {"detail", &e.Detail},
	}
}

// Filter selects entries. Each set field must match exactly; zero fields
// match everything.
type Filter struct {
	Tenant  string
	Project string
	Actor   string
	Action  string
	Outcome string
	// Since and Until bound Time, both inclusive; zero means unbounded.
	Since time.Time
	Until time.Time
}

// Match reports whether e passes f.
func (f Filter) Match(e Entry) bool {
	return (f.Tenant == "" || e.Tenant == f.Tenant) &&
		(f.Project == "" || e.Project == f.Project) &&
		(f.Actor == "" || e.Actor == f.Actor) &&
		(f.Action == "" || e.Action == f.Action) &&
		(f.Outcome == "" || e.Outcome == f.Outcome) &&
		(f.Since.IsZero() || !e.Time.Before(f.Since)) &&
		(f.Until.IsZero() || !e.Time.After(f.Until))
}

// Query asks the Log for one page of entries. The HTTP edge sets Tenant
// from a tenant admin's credential, never from the request, and validates
// nothing else: Log.Query does.
type Query struct {
	Filter
	// Cursor is a previous Page's Next, or empty for the newest entries. It
	// is valid only with the same Filter.
	Cursor string
	// Limit is the most entries the page may hold: 0 means DefaultLimit; at
	// most MaxLimit.
	Limit int
}

// Page limits.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// Page is one page of entries, newest first.
type Page struct {
	// Entries is never nil. It may hold fewer than the limit, even none,
	// while Next is set: a store may bound the work one page does.
	Entries []Entry
	// Next is the cursor for the following (older) page; empty when nothing
	// older matches.
	Next string
}

// Store keeps entries. Implementations must be safe for concurrent use and
// pass audittest.RunStoreTests and audittest.RunConcurrencyTests.
//
// The method names carry "Audit" because one backend value implements the
// stores of several packages.
type Store interface {
	// AppendAudit stores entries atomically: all or none. It is the only way
	// in; nothing is updated or deleted except by PurgeAudit. Each entry
	// must pass Validate (else ErrInvalidEntry) and have an ID not already
	// stored (else ErrDuplicate).
	AppendAudit(ctx context.Context, entries ...Entry) error

	// QueryAudit returns, newest first, at most limit (≥ 1) entries that
	// match f and whose IDs sort strictly before before (any ID if before is
	// empty).
	//
	// next is where to continue: pass it as before for the following page.
	// It is empty when no older entry matches. When limit entries are
	// returned and more match, next is the last returned entry's ID; a store
	// may also stop early, having examined as many entries as it allows one
	// call, and return fewer entries (even none) with next set to the oldest
	// ID it examined. Paging on with next therefore visits every matching
	// entry once. A malformed before or a limit below 1 is ErrInvalidFilter.
	QueryAudit(ctx context.Context, f Filter, before string, limit int) (entries []Entry, next string, err error)

	// PurgeAudit removes the entries whose Time is before the given instant
	// and returns how many it removed. It may work in several transactions;
	// on error (including ctx ending between them) the count so far is
	// returned with the error.
	PurgeAudit(ctx context.Context, before time.Time) (int, error)
}

// CheckQuery is the check of QueryAudit's arguments every Store makes
// before it reads: limit at least 1 and before empty or a well-formed ID.
// Its error wraps ErrInvalidFilter.
func CheckQuery(before string, limit int) error {
	if limit < 1 {
		return fmt.Errorf("%w: limit %d", ErrInvalidFilter, limit)
	}
	if before != "" {
		if _, _, err := ParseID(before); err != nil {
			return fmt.Errorf("%w: position: %w", ErrInvalidFilter, err)
		}
	}
	return nil
}
