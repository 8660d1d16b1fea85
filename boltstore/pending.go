package boltstore

import (
	"bytes"
	"context"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// PendingIDs returns the ids of the operations queued or running in
// tenant's queue, of project only unless project is "", in the order they
// were accepted (at most limit of them when limit > 0). It only enumerates:
// callers show an operation after reading it through the API's own checks.
func (s *Store) PendingIDs(ctx context.Context, tenant, project string, limit int) ([]string, error) {
	type entry struct{ seq, id []byte }
	var all []entry
	err := s.db.View(func(tx *bolt.Tx) error {
		tq := tx.Bucket(bucketQueues).Bucket([]byte(tenant))
		if tq == nil {
			return nil
		}
		return tq.ForEachBucket(func(p []byte) error {
			if project != "" && string(p) != project {
				return nil
			}
			return tq.Bucket(p).ForEach(func(k, v []byte) error {
				all = append(all, entry{bytes.Clone(k), bytes.Clone(v)})
				return nil
			})
		})
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(all, func(a, b entry) int { return bytes.Compare(a.seq, b.seq) })
	if limit > 0 && len(all) > limit {
		all = all[:limit]
	}
	ids := make([]string, len(all))
	for i, e := range all {
		ids[i] = string(e.id)
	}
	return ids, nil
}
