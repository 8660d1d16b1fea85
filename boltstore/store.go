package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/internal/records"
	"github.com/groupgate/groupgate/queue"
)

// SchemaVersion is the layout version this package reads and writes.
const SchemaVersion = 1

var (
	bucketMeta     = []byte("meta")
	bucketOps      = []byte("ops")
	bucketQueues   = []byte("queues")
	bucketGroups   = []byte("groups")
	bucketIdem     = []byte("idempotency")
	bucketVersions = []byte("versions")
	bucketMembers  = []byte("members")
	bucketUsers    = []byte("users")
	bucketMirror   = []byte("mirror")
	bucketPending  = []byte("pending")
	bucketOwners   = []byte("owners")
	keySchema      = []byte("schema")
)

// ErrSchema means the file was written by a newer, incompatible version.
var ErrSchema = errors.New("unsupported store schema version")

// Store is the bbolt-backed store. It is safe for concurrent use.
type Store struct {
	db *bolt.DB
	// writes feeds the committer, which batches concurrent writers.
	writes    chan *writeReq
	closing   chan struct{}
	stopped   chan struct{}
	closeOnce sync.Once
	// gens let readers cache tenants and group lists between commits.
	gens generations
}

var _ groups.Store = (*Store)(nil)

// Open opens or creates the store file at path (mode 0600, its directory
// 0700). It fails after timeout if another process holds the file.
func Open(path string, timeout time.Duration) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create store directory: %w", err)
	}
	// NoFreelistSync (as etcd sets it) spares a freelist write per commit;
	// the freelist is rebuilt when the file is opened.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout, NoFreelistSync: true})
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
		for _, b := range [][]byte{bucketOps, bucketQueues, bucketGroups, bucketIdem, bucketVersions, bucketMembers, bucketUsers, bucketMirror, bucketOwners} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		if err := countPending(tx); err != nil {
			return err
		}
		return tenantBuckets(tx)
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("initialise store %s: %w", path, err)
	}
	st := &Store{db: db, writes: make(chan *writeReq), closing: make(chan struct{}), stopped: make(chan struct{})}
	go st.committer()
	return st, nil
}

// Close waits for the write being committed, refuses further writes and
// closes the file.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.closing)
		<-s.stopped
		err = s.db.Close()
	})
	return err
}

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

// Backup writes a consistent copy of the whole file to w while the store
// keeps serving (one read transaction; writers are not blocked). It returns
// the number of bytes written. The copy is a valid store file: restore it by
// putting it in place of the store's file while the service is stopped.
func (s *Store) Backup(ctx context.Context, w io.Writer) (int64, error) {
	var n int64
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("backup: %w", err)
	}
	return n, nil
}

// Check verifies the file's integrity (every page reachable once, no
// corruption) and returns the first problem found.
func (s *Store) Check() error {
	return s.db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return checkPending(tx)
	})
}

// checkPending verifies that the pending counts match the queues.
func checkPending(tx *bolt.Tx) error {
	queues := tx.Bucket(bucketQueues)
	return queues.ForEachBucket(func(tenant []byte) error {
		tq := queues.Bucket(tenant)
		counted := depth(tx, string(tenant))
		return tq.ForEachBucket(func(project []byte) error {
			if n, kept := countPrefix(tq.Bucket(project), nil), counted.Projects[string(project)]; n != kept {
				return fmt.Errorf("store: %s/%s has %d operations queued but counts %d", tenant, project, n, kept)
			}
			return nil
		})
	})
}

// --- operations -----------------------------------------------------------

// Operation implements queue.Store.
func (s *Store) Operation(ctx context.Context, id string) (queue.Operation, error) {
	var op queue.Operation
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		op, err = getOp(tx, id)
		return err
	})
	return op, err
}

// Heads implements queue.Store.
func (s *Store) Heads(ctx context.Context, tenant string) ([]queue.Operation, error) {
	var heads []queue.Operation
	err := s.db.View(func(tx *bolt.Tx) error {
		tq := tx.Bucket(bucketQueues).Bucket([]byte(tenant))
		if tq == nil {
			return nil
		}
		return tq.ForEachBucket(func(project []byte) error {
			_, id := tq.Bucket(project).Cursor().First()
			if id == nil {
				return nil
			}
			op, err := getOp(tx, string(id))
			if err != nil {
				return err
			}
			heads = append(heads, op)
			return nil
		})
	})
	return heads, err
}

// UpdateOperation implements queue.Store.
func (s *Store) UpdateOperation(ctx context.Context, id string, fn func(*queue.Operation) error) (queue.Operation, error) {
	var op queue.Operation
	err := s.write(ctx, func(tx *bolt.Tx) error {
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

// Depth implements queue.Store.
func (s *Store) Depth(ctx context.Context, tenant string) (queue.Depth, error) {
	var d queue.Depth
	err := s.db.View(func(tx *bolt.Tx) error {
		d = depth(tx, tenant)
		return nil
	})
	return d, err
}

func depth(tx *bolt.Tx, tenant string) queue.Depth {
	d := queue.Depth{Projects: map[string]int{}}
	b := tx.Bucket(bucketPending).Bucket([]byte(tenant))
	if b == nil {
		return d
	}
	_ = b.ForEach(func(project, v []byte) error {
		if n := int(binary.BigEndian.Uint64(v)); n > 0 {
			d.Projects[string(project)] = n
			d.Total += n
		}
		return nil
	})
	return d
}

// addPending moves the count of a project's pending operations by delta.
// The counts make the queue-limit check of every enqueue O(projects)
// instead of O(backlog).
func addPending(tx *bolt.Tx, tenant, project string, delta int) error {
	b, err := tx.Bucket(bucketPending).CreateBucketIfNotExists([]byte(tenant))
	if err != nil {
		return err
	}
	var n int
	if v := b.Get([]byte(project)); len(v) == 8 {
		n = int(binary.BigEndian.Uint64(v))
	}
	n = max(n+delta, 0)
	if n == 0 {
		return b.Delete([]byte(project))
	}
	return b.Put([]byte(project), seqKey(uint64(n)))
}

// countPending builds the pending counts from the queues at every open: a
// file written by an older build (before the counts were kept, or after a
// rollback to one) may have none or stale ones.
func countPending(tx *bolt.Tx) error {
	if tx.Bucket(bucketPending) != nil {
		if err := tx.DeleteBucket(bucketPending); err != nil {
			return err
		}
	}
	root, err := tx.CreateBucket(bucketPending)
	if err != nil {
		return err
	}
	queues := tx.Bucket(bucketQueues)
	return queues.ForEachBucket(func(tenant []byte) error {
		tq := queues.Bucket(tenant)
		return tq.ForEachBucket(func(project []byte) error {
			n := countPrefix(tq.Bucket(project), nil)
			if n == 0 {
				return nil
			}
			b, err := root.CreateBucketIfNotExists(tenant)
			if err != nil {
				return err
			}
			return b.Put(project, seqKey(uint64(n)))
		})
	})
}

// Place implements queue.Store.
func (s *Store) Place(ctx context.Context, op queue.Operation) (int, queue.Depth, error) {
	n := 0
	var d queue.Depth
	err := s.db.View(func(tx *bolt.Tx) error {
		d = depth(tx, op.Tenant)
		tq := tx.Bucket(bucketQueues).Bucket([]byte(op.Tenant))
		if tq == nil {
			return nil
		}
		pq := tq.Bucket([]byte(op.Project))
		if pq == nil {
			return nil
		}
		stop := seqKey(op.Seq)
		c := pq.Cursor()
		for k, _ := c.First(); k != nil && bytes.Compare(k, stop) < 0; k, _ = c.Next() {
			n++
		}
		return nil
	})
	return n, d, err
}

// Idempotent implements queue.Store.
func (s *Store) Idempotent(ctx context.Context, scope, key string, now time.Time) (string, string, bool, error) {
	var r idemRecord
	var ok bool
	err := s.db.View(func(tx *bolt.Tx) error {
		r, ok = getIdem(tx, scope, key)
		ok = ok && r.Expires.After(now)
		return nil
	})
	return r.Operation, r.Fingerprint, ok, err
}

// PurgeIdempotency implements queue.Store.
func (s *Store) PurgeIdempotency(ctx context.Context, now time.Time) (int, error) {
	n := 0
	err := s.write(ctx, func(tx *bolt.Tx) error {
		n = 0
		root := tx.Bucket(bucketIdem)
		return root.ForEachBucket(func(scope []byte) error {
			b := root.Bucket(scope)
			var expired [][]byte
			err := b.ForEach(func(k, v []byte) error {
				var r idemRecord
				if json.Unmarshal(v, &r) != nil || !r.Expires.After(now) {
					expired = append(expired, append([]byte(nil), k...))
				}
				return nil
			})
			if err != nil {
				return err
			}
			for _, k := range expired {
				if err := b.Delete(k); err != nil {
					return err
				}
				n++
			}
			return nil
		})
	})
	return n, err
}

// getIdem returns the record of scope's key, expired or not. An
// unreadable record reads as none.
func getIdem(tx *bolt.Tx, scope, key string) (idemRecord, bool) {
	b := tx.Bucket(bucketIdem).Bucket([]byte(scope))
	if b == nil {
		return idemRecord{}, false
	}
	v := b.Get([]byte(key))
	if v == nil {
		return idemRecord{}, false
	}
	var r idemRecord
	if json.Unmarshal(v, &r) != nil {
		return idemRecord{}, false
	}
	return r, true
}

func putIdem(tx *bolt.Tx, ik queue.Idempotency, opID string) error {
	b, err := tx.Bucket(bucketIdem).CreateBucketIfNotExists([]byte(ik.Scope))
	if err != nil {
		return err
	}
	v, err := json.Marshal(idemRecord{Fingerprint: ik.Fingerprint, Operation: opID, Expires: ik.Expires})
	if err != nil {
		return err
	}
	return b.Put([]byte(ik.Key), v)
}

func seqKey(seq uint64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, seq)
	return k
}

func getOp(tx *bolt.Tx, id string) (queue.Operation, error) {
	v := tx.Bucket(bucketOps).Get([]byte(id))
	if v == nil {
		return queue.Operation{}, fmt.Errorf("operation %s: %w", id, queue.ErrNotFound)
	}
	var r records.Operation
	if err := json.Unmarshal(v, &r); err != nil {
		return queue.Operation{}, fmt.Errorf("decode operation %s: %w", id, err)
	}
	return r.ToOperation(), nil
}

func putOp(tx *bolt.Tx, op queue.Operation) error {
	v, err := json.Marshal(records.NewOperation(op))
	if err != nil {
		return fmt.Errorf("encode operation %s: %w", op.ID, err)
	}
	return tx.Bucket(bucketOps).Put([]byte(op.ID), v)
}

// --- groups ---------------------------------------------------------------

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
			var r records.Group
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode group %q: %w", k, err)
			}
			out = append(out, r.ToGroup(tenant))
		}
		return nil
	})
	return out, err
}

// countPrefix counts the keys of b that start with prefix.
func countPrefix(b *bolt.Bucket, prefix []byte) int {
	n := 0
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		n++
	}
	return n
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
	var r records.Group
	if err := json.Unmarshal(v, &r); err != nil {
		return groups.Group{}, fmt.Errorf("decode group %s: %w", name, err)
	}
	return r.ToGroup(name.Tenant), nil
}

// putGroup stores g as given under its key in its tenant's bucket and
// moves its project's change counter.
func putGroup(tx *bolt.Tx, g groups.Group) error {
	b, err := tx.Bucket(bucketGroups).CreateBucketIfNotExists([]byte(g.Name.Tenant))
	if err != nil {
		return err
	}
	v, err := json.Marshal(records.NewGroup(g))
	if err != nil {
		return fmt.Errorf("encode group %s: %w", g.Name, err)
	}
	if err := b.Put(groupKey(g.Name), v); err != nil {
		return fmt.Errorf("put group %s: %w", g.Name, err)
	}
	if err := bumpVersion(tx, g.Name.Tenant, g.Name.Project); err != nil {
		return fmt.Errorf("count change of %s: %w", g.Name, err)
	}
	return nil
}

// nextRevision returns the next number of the tenant's revision sequence,
// greater than after. The sequence is the tenant's groups bucket's.
func nextRevision(tx *bolt.Tx, tenant string, after uint64) (uint64, error) {
	b, err := tx.Bucket(bucketGroups).CreateBucketIfNotExists([]byte(tenant))
	if err != nil {
		return 0, err
	}
	rev, err := b.NextSequence()
	if err != nil {
		return 0, err
	}
	if rev <= after {
		// A file from before the sequence was kept: move it past, so no
		// revision is handed out twice.
		rev = after + 1
		if err := b.SetSequence(rev); err != nil {
			return 0, err
		}
	}
	return rev, nil
}

// bumpVersion counts a change to a project's groups, so readers can tell
// whether what they cached is current.
func bumpVersion(tx *bolt.Tx, tenant, project string) error {
	b, err := tx.Bucket(bucketVersions).CreateBucketIfNotExists([]byte(tenant))
	if err != nil {
		return err
	}
	v := uint64(1)
	if old := b.Get([]byte(project)); len(old) == 8 {
		v = binary.BigEndian.Uint64(old) + 1
	}
	return b.Put([]byte(project), seqKey(v))
}

// GroupsVersion implements groups.Store. The persisted version is memoized
// in memory and forgotten after every commit that may change it, so a read
// needs no transaction while the project is unchanged.
func (s *Store) GroupsVersion(ctx context.Context, tenant, project string) (uint64, error) {
	key := versionKey(tenant, project)
	if v, ok, _ := s.gens.cachedVersion(key); ok {
		return v, nil
	}
	_, _, epoch := s.gens.cachedVersion(key)
	var v uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketVersions).Bucket([]byte(tenant)); b != nil {
			if raw := b.Get([]byte(project)); len(raw) == 8 {
				v = binary.BigEndian.Uint64(raw)
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	s.gens.remember(key, v, epoch)
	return v, nil
}

// deleteGroup removes the group and its members, if the mirror holds it.
func deleteGroup(tx *bolt.Tx, name groups.Name) error {
	b := tx.Bucket(bucketGroups).Bucket([]byte(name.Tenant))
	if b == nil || b.Get(groupKey(name)) == nil {
		return nil
	}
	if err := b.Delete(groupKey(name)); err != nil {
		return fmt.Errorf("delete group %s: %w", name, err)
	}
	if err := dropMembers(tx, name); err != nil {
		return fmt.Errorf("delete members of %s: %w", name, err)
	}
	if err := bumpVersion(tx, name.Tenant, name.Project); err != nil {
		return fmt.Errorf("count change of %s: %w", name, err)
	}
	return nil
}
