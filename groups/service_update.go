package groups

import (
	"context"
	"fmt"

	"github.com/groupgate/groupgate/queue"
)

// Update queues setting group name's description. With ifRevision not 0 it
// applies only if the group is still at that revision (If-Match), and
// returns ErrRevision otherwise. The mirror shows the new description at
// once (a new Revision); a failed update restores the old one. It returns
// the group as now stored and the operation; on a replay the group is read
// again.
func (s *Service) Update(ctx context.Context, req Request, name Name, description string, ifRevision uint64) (Group, queue.Operation, bool, error) {
	if op, ok, err := s.Replayed(ctx, req); ok || err != nil {
		if err != nil {
			return Group{}, queue.Operation{}, false, err
		}
		g, err := s.Get(ctx, name)
		return g, op, true, err
	}
	if err := ValidateDescription(description); err != nil {
		return Group{}, queue.Operation{}, false, err
	}
	g, err := s.store.Group(ctx, name)
	if err != nil {
		return Group{}, queue.Operation{}, false, fmt.Errorf("update %s: %w", name, err)
	}
	op, err := s.newOperation(req, g.Name, updatePayload{FullName: g.Name.String(), Description: description, Previous: g.Description})
	if err != nil {
		return Group{}, queue.Operation{}, false, err
	}
	stored, op, err := s.store.UpdatePending(ctx, g.Name, description, ifRevision, op, s.queue.Limits(name.Tenant))
	op, replayed, err := s.queued(ctx, op, err, "update", name)
	if replayed && err == nil {
		stored, err = s.Get(ctx, name)
	}
	return stored, op, replayed, err
}
