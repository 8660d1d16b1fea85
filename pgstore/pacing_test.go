package pgstore_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/groupgate/groupgate/pgstore"
)

// TestNextAllowedStart walks one tenant's pacing record: nothing recorded
// allows a start now; a start without an end holds the next one for two
// intervals and the guard; its end brings that back to one interval and
// the guard; a hold beyond that wins. All by the database's clock.
func TestNextAllowedStart(t *testing.T) {
	s := mustOpen(t)
	ctx := t.Context()
	const interval, guard = time.Second, 5 * time.Millisecond
	p, err := s.NextAllowedStart(ctx, "SHIP", interval, guard)
	if err != nil {
		t.Fatal(err)
	}
	if p.Wait != 0 || !p.Next.Equal(p.Now) {
		t.Errorf("no record: %+v, want Next = Now, no wait", p)
	}
	l := mustAcquire(t, s, "SHIP", "replica-a", time.Minute)
	start, err := s.RecordStart(ctx, "SHIP", l.Epoch, 0)
	if err != nil {
		t.Fatal(err)
	}
	p, err = s.NextAllowedStart(ctx, "SHIP", interval, guard)
	if err != nil {
		t.Fatal(err)
	}
	if want := start.Add(2*interval + guard); !p.Next.Equal(want) {
		t.Errorf("start without an end: Next %v, want start + 2 intervals + guard = %v", p.Next, want)
	}
	if p.Wait != p.Next.Sub(p.Now) || p.Wait <= interval || p.Wait > 2*interval+guard {
		t.Errorf("start without an end: Wait %v (Now %v, Next %v)", p.Wait, p.Now, p.Next)
	}
	if err := s.RecordEnd(ctx, "SHIP", l.Epoch, 0); err != nil {
		t.Fatal(err)
	}
	p, err = s.NextAllowedStart(ctx, "SHIP", interval, guard)
	if err != nil {
		t.Fatal(err)
	}
	if want := start.Add(interval + guard); !p.Next.Equal(want) {
		t.Errorf("ended: Next %v, want start + interval + guard = %v", p.Next, want)
	}
	until, err := s.RecordHold(ctx, "SHIP", l.Epoch, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if d := until.Sub(start); d < 30*time.Second || d > 40*time.Second {
		t.Errorf("hold until %v, %v after the start: want about 30 s", until, d)
	}
	// A shorter hold does not shorten it.
	if u2, err := s.RecordHold(ctx, "SHIP", l.Epoch, time.Second); err != nil || !u2.Equal(until) {
		t.Errorf("shorter hold: until %v, %v; want %v kept", u2, err, until)
	}
	p, err = s.NextAllowedStart(ctx, "SHIP", interval, guard)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Next.Equal(until) {
		t.Errorf("held: Next %v, want the hold %v", p.Next, until)
	}
	// Another tenant is not held.
	if p, err := s.NextAllowedStart(ctx, "TRAIN", interval, guard); err != nil || p.Wait != 0 {
		t.Errorf("other tenant: %+v, %v; want no wait", p, err)
	}
}

// TestRecordStartAhead: a start recorded ahead of the send (during the
// gate's wait) is the database's clock at the write plus the rest of the
// wait, and the next leader spaces from that planned start.
func TestRecordStartAhead(t *testing.T) {
	s := mustOpen(t)
	ctx := t.Context()
	const interval, in = time.Second, 80 * time.Millisecond
	l := mustAcquire(t, s, "SHIP", "replica-a", time.Minute)
	before, err := s.NextAllowedStart(ctx, "SHIP", interval, 0) // the database's clock
	if err != nil {
		t.Fatal(err)
	}
	start, err := s.RecordStart(ctx, "SHIP", l.Epoch, in)
	if err != nil {
		t.Fatal(err)
	}
	after, err := s.NextAllowedStart(ctx, "SHIP", interval, 0)
	if err != nil {
		t.Fatal(err)
	}
	if start.Before(before.Now.Add(in)) || start.After(after.Now.Add(in)) {
		t.Errorf("start recorded %v ahead: %v, want between %v and %v (the write's clock + %v)",
			in, start, before.Now.Add(in), after.Now.Add(in), in)
	}
	if want := start.Add(2 * interval); !after.Next.Equal(want) {
		t.Errorf("Next %v, want the planned start + 2 intervals = %v", after.Next, want)
	}
	// A negative wait records now.
	start, err = s.RecordStart(ctx, "SHIP", l.Epoch, -time.Second)
	if err != nil {
		t.Fatal(err)
	}
	last, err := s.NextAllowedStart(ctx, "SHIP", interval, 0)
	if err != nil {
		t.Fatal(err)
	}
	if start.Before(after.Now) || start.After(last.Now) {
		t.Errorf("start recorded with a negative wait: %v, want between %v and %v", start, after.Now, last.Now)
	}
}

// TestRecordEndMovesTheStart: an end recorded with the request's lateness
// (it was sent that much after its recorded start) moves the recorded
// start, and the next leader spaces from the real send; a negative
// lateness moves nothing.
func TestRecordEndMovesTheStart(t *testing.T) {
	s := mustOpen(t)
	ctx := t.Context()
	const interval, guard, late = time.Second, 5 * time.Millisecond, 40 * time.Millisecond
	l := mustAcquire(t, s, "SHIP", "replica-a", time.Minute)
	start, err := s.RecordStart(ctx, "SHIP", l.Epoch, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RecordEnd(ctx, "SHIP", l.Epoch, late); err != nil {
		t.Fatal(err)
	}
	p, err := s.NextAllowedStart(ctx, "SHIP", interval, guard)
	if err != nil {
		t.Fatal(err)
	}
	if want := start.Add(late + interval + guard); !p.Next.Equal(want) {
		t.Errorf("ended %v late: Next %v, want start + %v + interval + guard = %v", late, p.Next, late, want)
	}
	start, err = s.RecordStart(ctx, "SHIP", l.Epoch, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RecordEnd(ctx, "SHIP", l.Epoch, -late); err != nil {
		t.Fatal(err)
	}
	if p, err = s.NextAllowedStart(ctx, "SHIP", interval, guard); err != nil {
		t.Fatal(err)
	}
	if want := start.Add(interval + guard); !p.Next.Equal(want) {
		t.Errorf("ended with a negative lateness: Next %v, want start + interval + guard = %v", p.Next, want)
	}
}

// TestPacingFencedAfterTakeover: once another replica has taken the lapsed
// lease, the old leader's writes fail with ErrFenced and change nothing;
// the new leader sees the old leader's unfinished start and waits for it.
func TestPacingFencedAfterTakeover(t *testing.T) {
	a, b := twoReplicas(t)
	ctx := t.Context()
	const interval, guard = 5 * time.Second, 5 * time.Millisecond
	// A second is ample for the start below, even on a loaded machine.
	la := mustAcquire(t, a, "SHIP", "replica-a", time.Second)
	start, err := a.RecordStart(ctx, "SHIP", la.Epoch, 0)
	if err != nil {
		t.Fatal(err)
	}
	lb := takeOver(t, b, "SHIP", "replica-b")
	before, err := b.NextAllowedStart(ctx, "SHIP", interval, guard)
	if err != nil {
		t.Fatal(err)
	}
	if want := start.Add(2*interval + guard); !before.Next.Equal(want) {
		t.Errorf("new leader's next start %v, want the old leader's unfinished start + 2 intervals + guard = %v", before.Next, want)
	}
	if _, err := a.RecordStart(ctx, "SHIP", la.Epoch, 0); !errors.Is(err, pgstore.ErrFenced) {
		t.Errorf("deposed RecordStart: %v, want ErrFenced", err)
	}
	if err := a.RecordEnd(ctx, "SHIP", la.Epoch, 0); !errors.Is(err, pgstore.ErrFenced) {
		t.Errorf("deposed RecordEnd: %v, want ErrFenced", err)
	}
	if _, err := a.RecordHold(ctx, "SHIP", la.Epoch, time.Hour); !errors.Is(err, pgstore.ErrFenced) {
		t.Errorf("deposed RecordHold: %v, want ErrFenced", err)
	}
	after, err := b.NextAllowedStart(ctx, "SHIP", interval, guard)
	if err != nil {
		t.Fatal(err)
	}
	if !after.Next.Equal(before.Next) {
		t.Errorf("the deposed leader's writes moved the next start from %v to %v", before.Next, after.Next)
	}
	// A lease that was never this tenant's, or a later epoch, is fenced too.
	if _, err := b.RecordStart(ctx, "SHIP", lb.Epoch+1, 0); !errors.Is(err, pgstore.ErrFenced) {
		t.Errorf("RecordStart with a future epoch: %v, want ErrFenced", err)
	}
	if _, err := b.RecordStart(ctx, "NOLEASE", 1, 0); !errors.Is(err, pgstore.ErrFenced) {
		t.Errorf("RecordStart without a lease: %v, want ErrFenced", err)
	}
	if _, err := b.RecordStart(ctx, "SHIP", lb.Epoch, 0); err != nil {
		t.Errorf("new leader's RecordStart: %v", err)
	}
	// After a release, the releaser's epoch is fenced at once.
	if err := b.ReleaseLease(ctx, lb); err != nil {
		t.Fatal(err)
	}
	if _, err := b.RecordStart(ctx, "SHIP", lb.Epoch, 0); !errors.Is(err, pgstore.ErrFenced) {
		t.Errorf("RecordStart after release: %v, want ErrFenced", err)
	}
}

// TestRecordStartRacesTakeover: a leader records starts as fast as it can
// while another replica waits to take its lapsing lease. Every start the
// leader got recorded lies before the takeover by the database's clock,
// and the new leader waits from the last of them; once the other replica
// holds the lease, the leader is fenced.
func TestRecordStartRacesTakeover(t *testing.T) {
	a, b := twoReplicas(t)
	ctx := t.Context()
	la := mustAcquire(t, a, "SHIP", "replica-a", time.Second)
	var starts []time.Time
	var fenced error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
			at, err := a.RecordStart(ctx, "SHIP", la.Epoch, 0)
			if err != nil {
				fenced = err
				return
			}
			starts = append(starts, at)
		}
	}()
	lb := takeOver(t, b, "SHIP", "replica-b")
	wg.Wait()
	if !errors.Is(fenced, pgstore.ErrFenced) {
		t.Fatalf("the old leader stopped with %v, want ErrFenced", fenced)
	}
	if len(starts) < 2 {
		t.Fatalf("only %d starts recorded before the takeover", len(starts))
	}
	// The takeover's instant, by the database's clock (its expiry is that
	// plus the minute asked for).
	taken := lb.Expires.Add(-time.Minute)
	for _, at := range starts {
		if !at.Before(taken) {
			t.Fatalf("a start at %v was recorded at or after the takeover at %v", at, taken)
		}
	}
	p, err := b.NextAllowedStart(ctx, "SHIP", time.Second, 0)
	if err != nil {
		t.Fatal(err)
	}
	if last := starts[len(starts)-1]; !p.Next.Equal(last.Add(2 * time.Second)) {
		t.Errorf("next start %v, want the last recorded start %v + 2 intervals", p.Next, last)
	}
	t.Logf("%d starts recorded before the takeover", len(starts))
}
