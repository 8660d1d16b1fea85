package webhooks

import (
	"context"
	"errors"
	"fmt"

	"github.com/groupgate/groupgate/groups"
)

// This file holds what a delivery does, once verified: its effect on the
// mirror and its record, in one transaction of the Store.

// ErrDuplicate is returned by Apply for a delivery already applied within
// Retention whose outcome is recorded.
var ErrDuplicate = errors.New("webhooks: delivery already processed")

// Apply applies d, in one transaction of s: if d.Digest is remembered for
// d.Tenant and has not expired at d.At, it changes nothing and returns
// ErrDuplicate when the delivery's outcome was recorded (Recorded), else
// the Applied remembered with it, with Resumed set (the process stopped
// between applying and recording); otherwise it applies d's effect to the
// tenant's mirror (see Delivery) and remembers d.Digest and the Applied
// until d.Expires, its outcome not yet recorded.
func Apply(ctx context.Context, s Store, d Delivery) (Applied, error) {
	var out Applied
	err := s.UpdateDeliveries(ctx, d.Tenant, func(tx Tx) error {
		out = Applied{} // fn may run again
		r, ok, err := tx.Delivery(d.Digest)
		if err != nil {
			return err
		}
		if ok && r.Expires.After(d.At) {
			if r.Pending == nil {
				return ErrDuplicate
			}
			out = *r.Pending
			out.Resumed = true
			return nil
		}
		if out, err = applyEffect(tx, d); err != nil {
			return err
		}
		pending := out
		return tx.PutDelivery(d.Digest, Record{Expires: d.Expires, Pending: &pending})
	})
	switch {
	case errors.Is(err, ErrDuplicate):
		return Applied{}, err
	case err != nil:
		return Applied{}, fmt.Errorf("apply webhook delivery for %s: %w", d.Tenant, err)
	}
	return out, nil
}

// applyEffect makes d's change to the mirror (see Delivery).
func applyEffect(tx Tx, d Delivery) (Applied, error) {
	var ev groups.UserEvent
	var err error
	switch {
	case d.Gone != nil:
		ev, err = groups.RemoveDeletedUser(tx, *d.Gone, d.At, d.At.Add(MarkRetention))
	case d.Changed != nil:
		ev, err = groups.FollowUpdatedUser(tx, *d.Changed, d.At)
	}
	return Applied{Left: ev.Left, User: ev.User, Known: ev.Known}, err
}

// Recorded marks the outcome of tenant's delivery digest recorded
// (audited): its repeats are duplicates from now on. A delivery not
// remembered, or recorded already, is left alone.
func Recorded(ctx context.Context, s Store, tenant string, digest [32]byte) error {
	err := s.UpdateDeliveries(ctx, tenant, func(tx Tx) error {
		r, ok, err := tx.Delivery(digest)
		if err != nil || !ok || r.Pending == nil {
			return err
		}
		return tx.PutDelivery(digest, Record{Expires: r.Expires})
	})
	if err != nil {
		return fmt.Errorf("mark webhook delivery recorded for %s: %w", tenant, err)
	}
	return nil
}
