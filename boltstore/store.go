package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/throttle"
)

// SchemaVersion is the layout version this package reads and writes.
const SchemaVersion = 1

var (
	bucketMeta   = []byte("meta")
	bucketOps    = []byte("ops")
	bucketQueues = []byte("queues")
	bucketGroups = []byte("groups")
	keySchema    = []byte("schema")
)

// ErrSchema means the file was written by a newer, incompatible version.
var ErrSchema = errors.New("unsupported store schema version")

// Store is the bbolt-backed store. It is safe for concurrent use.
type Store struct {
	db *bolt.DB
}

var (
	_ throttle.Store = (*Store)(nil)
	_ groups.Store   = (*Store)(nil)
)

// Open opens or creates the store file at path (mode 0600, its directory
// 0700). It fails after timeout if another process holds the file.
func Open(path string, timeout time.Duration) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create store directory: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout})
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		if v := meta.Get(keySchema); v != nil {
			if string(v) != fmt.Sprint(SchemaVersion) {
				return fmt.Errorf("%w: file has %q, this build reads %d", ErrSchema, v, SchemaVersion)
			}
		} else if err := meta.Put(keySchema, []byte(fmt.Sprint(SchemaVersion))); err != nil {
			return err
		}
		for _, b := range [][]byte{bucketOps, bucketQueues, bucketGroups} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("initialise store %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

// Path returns the file's path.
func (s *Store) Path() string { return s.db.Path() }

// Ping checks that the store can run a read transaction.
func (s *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketMeta) == nil {
			return errors.New("store: meta bucket missing")
		}
		return nil
	})
}

// Check verifies the file's integrity (every page reachable once, no
// corruption) and returns the first problem found.
func (s *Store) Check() error {
	return s.db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	})
}

// --- operations -----------------------------------------------------------

// Enqueue implements throttle.Store.
func (s *Store) Enqueue(ctx context.Context, op throttle.Operation) (throttle.Operation, error) {
	err := s.db.Update(func(tx *bolt.Tx) error {
		var err error
		op, err = enqueue(tx, op)
		return err
	})
	if err != nil {
		return throttle.Operation{}, fmt.Errorf("enqueue %s: %w", op.ID, err)
	}
	return op, nil
}

func enqueue(tx *bolt.Tx, op throttle.Operation) (throttle.Operation, error) {
	q, err := tx.Bucket(bucketQueues).CreateBucketIfNotExists([]byte(op.Tenant))
	if err != nil {
		return op, err
	}
	seq, err := q.NextSequence()
	if err != nil {
		return op, err
	}
	op.Seq = seq
	op.State = throttle.Queued
	if err := q.Put(seqKey(seq), []byte(op.ID)); err != nil {
		return op, err
	}
	return op, putOp(tx, op)
}

// Operation implements throttle.Store.
func (s *Store) Operation(ctx context.Context, id string) (throttle.Operation, error) {
	var op throttle.Operation
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		op, err = getOp(tx, id)
		return err
	})
	return op, err
}

// Head implements throttle.Store.
func (s *Store) Head(ctx context.Context, tenant string) (throttle.Operation, error) {
	var op throttle.Operation
	err := s.db.View(func(tx *bolt.Tx) error {
		q := tx.Bucket(bucketQueues).Bucket([]byte(tenant))
		if q == nil {
			return throttle.ErrEmpty
		}
		_, id := q.Cursor().First()
		if id == nil {
			return throttle.ErrEmpty
		}
		var err error
		op, err = getOp(tx, string(id))
		return err
	})
	return op, err
}

// UpdateOperation implements throttle.Store.
func (s *Store) UpdateOperation(ctx context.Context, id string, fn func(*throttle.Operation) error) (throttle.Operation, error) {
	var op throttle.Operation
	err := s.db.Update(func(tx *bolt.Tx) error {
		var err error
		if op, err = getOp(tx, id); err != nil {
			return err
		}
		if err := fn(&op); err != nil {
			return err
		}
		return putOp(tx, op)
	})
	return op, err
}

// Complete implements throttle.Store.
func (s *Store) Complete(ctx context.Context, op throttle.Operation, effects []throttle.Effect) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		if _, err := getOp(tx, op.ID); err != nil {
			return err
		}
		if err := putOp(tx, op); err != nil {
			return err
		}
		if q := tx.Bucket(bucketQueues).Bucket([]byte(op.Tenant)); q != nil {
			if err := q.Delete(seqKey(op.Seq)); err != nil {
				return err
			}
		}
		for _, e := range effects {
			if err := applyEffect(tx, e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("complete %s: %w", op.ID, err)
	}
	return nil
}

// RequeueRunning implements throttle.Store.
func (s *Store) RequeueRunning(ctx context.Context, now time.Time) (int, error) {
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketQueues).ForEachBucket(func(tenant []byte) error {
			return tx.Bucket(bucketQueues).Bucket(tenant).ForEach(func(_, id []byte) error {
				op, err := getOp(tx, string(id))
				if err != nil {
					return err
				}
				if op.State != throttle.Running {
					return nil
				}
				op.State, op.UpdatedAt = throttle.Queued, now
				n++
				return putOp(tx, op)
			})
		})
	})
	if err != nil {
		return 0, fmt.Errorf("requeue running operations: %w", err)
	}
	return n, nil
}

// QueueDepth implements throttle.Store.
func (s *Store) QueueDepth(ctx context.Context, tenant string) (int, error) {
	n := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		if q := tx.Bucket(bucketQueues).Bucket([]byte(tenant)); q != nil {
			n = q.Stats().KeyN
		}
		return nil
	})
	return n, err
}

func seqKey(seq uint64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, seq)
	return k
}

func getOp(tx *bolt.Tx, id string) (throttle.Operation, error) {
	v := tx.Bucket(bucketOps).Get([]byte(id))
	if v == nil {
		return throttle.Operation{}, fmt.Errorf("operation %s: %w", id, throttle.ErrNotFound)
	}
	var r opRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return throttle.Operation{}, fmt.Errorf("decode operation %s: %w", id, err)
	}
	return r.operation(), nil
}

func putOp(tx *bolt.Tx, op throttle.Operation) error {
	v, err := json.Marshal(newOpRecord(op))
	if err != nil {
		return fmt.Errorf("encode operation %s: %w", op.ID, err)
	}
	return tx.Bucket(bucketOps).Put([]byte(op.ID), v)
}

// --- groups ---------------------------------------------------------------

// CreatePending implements groups.Store.
func (s *Store) CreatePending(ctx context.Context, g groups.Group, op throttle.Operation, limit int) (throttle.Operation, error) {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.Bucket(bucketGroups).CreateBucketIfNotExists([]byte(g.Name.Tenant))
		if err != nil {
			return err
		}
		key := groupKey(g.Name)
		if b.Get(key) != nil {
			return groups.ErrExists
		}
		if limit > 0 && b.Stats().KeyN >= limit {
			return fmt.Errorf("%w: the namespace holds at most %d groups", groups.ErrLimit, limit)
		}
		if err := putGroup(b, g); err != nil {
			return err
		}
		op, err = enqueue(tx, op)
		return err
	})
	return op, err
}

// DeletePending implements groups.Store.
func (s *Store) DeletePending(ctx context.Context, name groups.Name, op throttle.Operation) (throttle.Operation, error) {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketGroups).Bucket([]byte(name.Tenant))
		g, err := getGroup(b, name)
		if err != nil {
			return err
		}
		if g.State != groups.Active {
			return fmt.Errorf("%w: the group is %s (operation %s)", groups.ErrPending, g.State, g.PendingOperation)
		}
		g.State, g.PendingOperation, g.UpdatedAt = groups.Deleting, op.ID, op.CreatedAt
		if err := putGroup(b, g); err != nil {
			return err
		}
		op, err = enqueue(tx, op)
		return err
	})
	return op, err
}

// Group implements groups.Store.
func (s *Store) Group(ctx context.Context, name groups.Name) (groups.Group, error) {
	var g groups.Group
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		g, err = getGroup(tx.Bucket(bucketGroups).Bucket([]byte(name.Tenant)), name)
		return err
	})
	return g, err
}

// Groups implements groups.Store.
func (s *Store) Groups(ctx context.Context, tenant, project string) ([]groups.Group, error) {
	out := []groups.Group{}
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketGroups).Bucket([]byte(tenant))
		if b == nil {
			return nil
		}
		prefix := append([]byte(project), 0)
		c := b.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var r groupRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode group %q: %w", k, err)
			}
			out = append(out, r.group(tenant))
		}
		return nil
	})
	return out, err
}

func groupKey(n groups.Name) []byte {
	return append(append([]byte(n.Project), 0), n.Key()...)
}

func getGroup(b *bolt.Bucket, name groups.Name) (groups.Group, error) {
	if b == nil {
		return groups.Group{}, groups.ErrNotFound
	}
	v := b.Get(groupKey(name))
	if v == nil {
		return groups.Group{}, groups.ErrNotFound
	}
	var r groupRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return groups.Group{}, fmt.Errorf("decode group %s: %w", name, err)
	}
	return r.group(name.Tenant), nil
}

func putGroup(b *bolt.Bucket, g groups.Group) error {
	v, err := json.Marshal(newGroupRecord(g))
	if err != nil {
		return fmt.Errorf("encode group %s: %w", g.Name, err)
	}
	return b.Put(groupKey(g.Name), v)
}

// applyEffect commits one domain effect of an operation's outcome.
func applyEffect(tx *bolt.Tx, e throttle.Effect) error {
	switch e := e.(type) {
	case groups.Created:
		b := tx.Bucket(bucketGroups).Bucket([]byte(e.Name.Tenant))
		g, err := getGroup(b, e.Name)
		if errors.Is(err, groups.ErrNotFound) {
			return nil // nothing to update; see groups.Created
		}
		if err != nil {
			return fmt.Errorf("apply created %s: %w", e.Name, err)
		}
		g.State, g.UpstreamID, g.PendingOperation, g.UpdatedAt = groups.Active, e.UpstreamID, "", e.At
		return putGroup(b, g)
	case groups.DeleteFailed:
		b := tx.Bucket(bucketGroups).Bucket([]byte(e.Name.Tenant))
		g, err := getGroup(b, e.Name)
		if errors.Is(err, groups.ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("apply delete-failed %s: %w", e.Name, err)
		}
		g.State, g.PendingOperation, g.UpdatedAt = groups.Active, "", e.At
		return putGroup(b, g)
	case groups.CreateFailed:
		return deleteGroup(tx, e.Name)
	case groups.Deleted:
		return deleteGroup(tx, e.Name)
	default:
		return fmt.Errorf("unknown effect type %T", e)
	}
}

func deleteGroup(tx *bolt.Tx, name groups.Name) error {
	b := tx.Bucket(bucketGroups).Bucket([]byte(name.Tenant))
	if b == nil {
		return nil
	}
	return b.Delete(groupKey(name))
}
