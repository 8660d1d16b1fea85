package pacing

import (
	"context"
	"time"
)

// Record is a tenant's durable record of its upstream requests, shared by
// every replica that may lead the tenant, so that the tenant's budget
// survives a handover: one request per interval in total, whatever the
// number of replicas. A leader's gate writes it (see Gate.Attach); a new
// leader reads it before its first request. Its writes are fenced by the
// lead that made it: once that lead is lost they fail, and the request is
// not sent. Times are the shared store's clock, never a replica's.
type Record interface {
	// Start records durably that a request starts in from now (by the
	// record's clock, measured from when the write reaches it), with no
	// end yet, replacing the start recorded before. The gate calls it
	// during the last recordLead of its wait, with the rest of the wait as
	// in, so the write's round trip overlaps the wait; the request is sent
	// when the wait is over and the write has returned, so the recorded
	// start is earlier than the real one only by how late the send is. It
	// may be called again for the same request, with a later start (a
	// Hold came meanwhile). On an error the request is not sent.
	Start(ctx context.Context, in time.Duration) error
	// End records that the request last started has ended, and that it
	// was really sent late after its recorded start (its connection set
	// up, its headers written; zero if not later): the recorded start
	// moves by that much, so the next leader spaces its first request
	// from the real send.
	End(ctx context.Context, late time.Duration) error
	// Hold records that no request may start for d from now (an
	// upstream's Retry-After). A hold only ever extends.
	Hold(ctx context.Context, d time.Duration) error
	// Wait returns how long, from the moment it answered, until a request
	// may start by the record: the last start + interval, plus a further
	// interval when that request has no recorded end (it may still be
	// running), and no earlier than a hold. Zero with no record.
	Wait(ctx context.Context, interval time.Duration) (time.Duration, error)
}

// recordLead is how long before the end of its wait the gate records a
// request's start: ample for one write to the shared store, and short. A
// start recorded by a leader that then lost its lead before sending, and
// could not record its end, costs the next leader what a request with no
// recorded end does: one interval more.
const recordLead = 100 * time.Millisecond

// recordTimeout bounds the writes of a record made outside a request's
// context (End after the request, Hold).
const recordTimeout = 10 * time.Second

// Attach makes the gate keep rec while this replica leads the tenant: it
// first holds every request until rec allows one (what another replica,
// or an earlier lead, started), then records every request's start before
// it is sent (Acquire fails if that fails), its end, and every Hold. A
// gate with no record (one process) costs nothing more. Detach ends it.
func (g *Gate) Attach(ctx context.Context, rec Record) error {
	wait, err := rec.Wait(ctx, g.interval)
	if err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.rec = rec
	g.attached++
	// From the answer, not the question: later by the way back, never
	// earlier than the record allows.
	if until := g.now().Add(wait); until.After(g.hold) {
		g.hold = until
	}
	return nil
}

// Detach stops recording in the record given to Attach (the lead is over).
func (g *Gate) Detach() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.rec = nil
}

// record returns the gate's record, if any.
func (g *Gate) record() Record {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.rec
}
