package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"github.com/groupgate/groupgate/internal/records"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/storecopy"
	"github.com/groupgate/groupgate/webhooks"
)

var _ storecopy.Store = (*Store)(nil)

// Export implements storecopy.Exporter: every record of the file, read in
// one read transaction.
func (s *Store) Export(ctx context.Context) (*storecopy.Dump, error) {
	d := &storecopy.Dump{}
	err := s.db.View(func(tx *bolt.Tx) error { return exportTx(tx, d) })
	if err != nil {
		return nil, fmt.Errorf("export %s: %w", s.Path(), err)
	}
	d.Sort()
	return d, nil
}

// eachJSON decodes every value of b into a fresh T and passes it on with
// its key; nested buckets are skipped.
func eachJSON[T any](b *bolt.Bucket, fn func(k []byte, r T) error) error {
	if b == nil {
		return nil
	}
	return b.ForEach(func(k, v []byte) error {
		if v == nil {
			return nil
		}
		var r T
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("decode %q: %w", k, err)
		}
		return fn(k, r)
	})
}

// eachBucket calls fn with the name and bucket of every bucket nested in
// b.
func eachBucket(b *bolt.Bucket, fn func(name []byte, b *bolt.Bucket) error) error {
	if b == nil {
		return nil
	}
	return b.ForEachBucket(func(k []byte) error { return fn(k, b.Bucket(k)) })
}

// copiedBuckets are the top-level buckets Export reads (meta holds the
// schema version only, which Open writes).
var copiedBuckets = [][]byte{bucketMeta, bucketTenants, bucketProjects, bucketKeys, bucketMirror, bucketOps, bucketQueues,
	bucketPending, bucketIdem, bucketGroups, bucketVersions, bucketMembers, bucketUsers, bucketOwners, bucketWebhooks,
	bucketNotices, bucketAudit, bucketAuditTenant}

func exportTx(tx *bolt.Tx, d *storecopy.Dump) error {
	// A bucket added to the layout but not here would be left out of a
	// copy without a word: refuse instead.
	if err := tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
		if !slices.ContainsFunc(copiedBuckets, func(b []byte) bool { return bytes.Equal(b, name) }) {
			return fmt.Errorf("bucket %q is not copied (boltstore/export.go)", name)
		}
		return nil
	}); err != nil {
		return err
	}
	if err := eachJSON(tx.Bucket(bucketTenants), func(_ []byte, r tenantRecord) error {
		d.Tenants = append(d.Tenants, r.tenant())
		return nil
	}); err != nil {
		return err
	}
	if err := eachBucket(tx.Bucket(bucketProjects), func(tenant []byte, b *bolt.Bucket) error {
		return eachJSON(b, func(_ []byte, r projectRecord) error {
			d.Projects = append(d.Projects, r.project(string(tenant)))
			return nil
		})
	}); err != nil {
		return err
	}
	if err := eachJSON(tx.Bucket(bucketKeys), func(_ []byte, r keyRecord) error {
		d.Keys = append(d.Keys, r.key())
		return nil
	}); err != nil {
		return err
	}
	mirrors := map[string]*storecopy.Mirror{}
	mirror := func(tenant string) *storecopy.Mirror {
		if m := mirrors[tenant]; m != nil {
			return m
		}
		mirrors[tenant] = &storecopy.Mirror{Tenant: tenant}
		return mirrors[tenant]
	}
	if err := eachJSON(tx.Bucket(bucketMirror), func(tenant []byte, r mirrorRecord) error {
		mirror(string(tenant)).GroupsSyncedAt = r.GroupsSyncedAt
		return nil
	}); err != nil {
		return err
	}
	if err := eachJSON(tx.Bucket(bucketOps), func(_ []byte, r records.Operation) error {
		d.Operations = append(d.Operations, r.ToOperation())
		return nil
	}); err != nil {
		return err
	}
	if err := eachBucket(tx.Bucket(bucketQueues), func(tenant []byte, tq *bolt.Bucket) error {
		mirror(string(tenant)).QueueSeq = tq.Sequence()
		return eachBucket(tq, func(project []byte, pq *bolt.Bucket) error {
			return pq.ForEach(func(k, v []byte) error {
				d.Queue = append(d.Queue, storecopy.Queued{Tenant: string(tenant), Project: string(project),
					Seq: binary.BigEndian.Uint64(k), Operation: string(v)})
				return nil
			})
		})
	}); err != nil {
		return err
	}
	if err := eachBucket(tx.Bucket(bucketPending), func(tenant []byte, b *bolt.Bucket) error {
		return b.ForEach(func(project, v []byte) error {
			if n := int(binary.BigEndian.Uint64(v)); n > 0 {
				d.Pending = append(d.Pending, storecopy.Pending{Tenant: string(tenant), Project: string(project), N: n})
			}
			return nil
		})
	}); err != nil {
		return err
	}
	if err := eachBucket(tx.Bucket(bucketIdem), func(scope []byte, b *bolt.Bucket) error {
		return eachJSON(b, func(key []byte, r idemRecord) error {
			d.Idempotency = append(d.Idempotency, storecopy.Idempotency{Scope: string(scope), Key: string(key),
				Operation: r.Operation, Fingerprint: r.Fingerprint, Expires: r.Expires})
			return nil
		})
	}); err != nil {
		return err
	}
	if err := eachBucket(tx.Bucket(bucketGroups), func(tenant []byte, b *bolt.Bucket) error {
		mirror(string(tenant)).Revision = b.Sequence()
		return eachJSON(b, func(_ []byte, r records.Group) error {
			d.Groups = append(d.Groups, r.ToGroup(string(tenant)))
			return nil
		})
	}); err != nil {
		return err
	}
	if err := eachBucket(tx.Bucket(bucketVersions), func(tenant []byte, b *bolt.Bucket) error {
		return b.ForEach(func(project, v []byte) error {
			d.Versions = append(d.Versions, storecopy.Version{Tenant: string(tenant), Project: string(project), Version: binary.BigEndian.Uint64(v)})
			return nil
		})
	}); err != nil {
		return err
	}
	if err := exportMembers(tx, d); err != nil {
		return err
	}
	if err := eachBucket(tx.Bucket(bucketUsers), func(tenant []byte, b *bolt.Bucket) error {
		return b.ForEach(func(k, v []byte) error {
			if len(k) < 2 || k[1] != 0 {
				return fmt.Errorf("known user key %q", k)
			}
			switch k[0] {
			case 'd':
				var r deletedRecord
				if err := json.Unmarshal(v, &r); err != nil {
					return fmt.Errorf("decode deleted-user mark %q: %w", k, err)
				}
				d.Deleted = append(d.Deleted, storecopy.Deleted{Tenant: string(tenant), Key: string(k[2:]), User: r.deletedUser()})
			default:
				var r records.User
				if err := json.Unmarshal(v, &r); err != nil {
					return fmt.Errorf("decode known user %q: %w", k, err)
				}
				d.KnownUsers = append(d.KnownUsers, storecopy.KnownUser{Tenant: string(tenant), Kind: k[0], Key: string(k[2:]), User: r.ToUser()})
			}
			return nil
		})
	}); err != nil {
		return err
	}
	if err := eachBucket(tx.Bucket(bucketOwners), func(tenant []byte, b *bolt.Bucket) error {
		return eachJSON(b, func(k []byte, r records.Owners) error {
			name, err := nameOfKey(string(tenant), k)
			if err != nil {
				return err
			}
			o := groups.Owners{UpstreamID: r.UpstreamID, Users: make([]groups.User, 0, len(r.Owners))}
			for _, u := range r.Owners {
				o.Users = append(o.Users, u.ToUser())
			}
			d.Owners = append(d.Owners, storecopy.Owners{Group: name, Owners: o})
			return nil
		})
	}); err != nil {
		return err
	}
	if err := eachBucket(tx.Bucket(bucketWebhooks), func(tenant []byte, b *bolt.Bucket) error {
		return b.ForEach(func(k, v []byte) error {
			if len(k) != 32 || len(v) < 8 {
				return fmt.Errorf("webhook delivery record %x of %s", k, tenant)
			}
			r := webhooks.Record{Expires: time.Unix(0, int64(binary.BigEndian.Uint64(v))).UTC()}
			if len(v) > 8 {
				r.Pending = new(webhooks.Applied)
				if err := json.Unmarshal(v[8:], r.Pending); err != nil {
					return fmt.Errorf("decode pending delivery: %w", err)
				}
			}
			dl := storecopy.Delivery{Tenant: string(tenant), Record: r}
			copy(dl.Digest[:], k)
			d.Deliveries = append(d.Deliveries, dl)
			return nil
		})
	}); err != nil {
		return err
	}
	if err := eachBucket(tx.Bucket(bucketNotices), func(tenant []byte, b *bolt.Bucket) error {
		return eachJSON(b, func(kind []byte, r noticeRecord) error {
			d.Notices = append(d.Notices, storecopy.Notice{Tenant: string(tenant), Kind: string(kind), Text: r.Text, Expires: r.Expires})
			return nil
		})
	}); err != nil {
		return err
	}
	if b := tx.Bucket(bucketAudit); b != nil {
		if err := b.ForEach(func(k, v []byte) error {
			e, err := decodeAuditEntry(k, v)
			if err != nil {
				return err
			}
			d.Audit = append(d.Audit, e)
			return nil
		}); err != nil {
			return err
		}
	}
	for _, m := range mirrors {
		if *m != (storecopy.Mirror{Tenant: m.Tenant}) {
			d.Mirrors = append(d.Mirrors, *m)
		}
	}
	return nil
}

// exportMembers reads the member lists, each named by its key (see
// nameOfKey).
func exportMembers(tx *bolt.Tx, d *storecopy.Dump) error {
	return eachBucket(tx.Bucket(bucketMembers), func(tenant []byte, tb *bolt.Bucket) error {
		return eachBucket(tb, func(key []byte, mb *bolt.Bucket) error {
			name, err := nameOfKey(string(tenant), key)
			if err != nil {
				return err
			}
			return eachJSON(mb, func(_ []byte, r records.User) error {
				d.Members = append(d.Members, storecopy.Member{Group: name, User: r.ToUser()})
				return nil
			})
		})
	})
}

// nameOfKey is the group name of a key of the members and owners
// buckets: its project and its name lower-cased (as the key holds it).
func nameOfKey(tenant string, key []byte) (groups.Name, error) {
	project, group, ok := bytes.Cut(key, []byte{0})
	if !ok {
		return groups.Name{}, fmt.Errorf("group key %q of %s", key, tenant)
	}
	return groups.Name{Tenant: tenant, Project: string(project), Group: string(group)}, nil
}

// Import implements storecopy.Importer: it writes every record of d as
// it is, in one transaction, into a store that holds none
// (storecopy.ErrNotEmpty otherwise).
func (s *Store) Import(ctx context.Context, d *storecopy.Dump) error {
	err := s.write(ctx, func(tx *bolt.Tx) error {
		if !fileEmpty(tx) {
			return storecopy.ErrNotEmpty
		}
		return importTx(tx, d)
	})
	if err != nil {
		return fmt.Errorf("import into %s: %w", s.Path(), err)
	}
	keys := make([]string, 0, len(d.Versions))
	for _, v := range d.Versions {
		keys = append(keys, versionKey(v.Tenant, v.Project))
	}
	s.gens.forget(keys...)
	s.gens.tenantsChanged()
	return nil
}

// fileEmpty reports whether no bucket but meta holds anything.
func fileEmpty(tx *bolt.Tx) bool {
	empty := true
	_ = tx.ForEach(func(name []byte, b *bolt.Bucket) error {
		if bytes.Equal(name, bucketMeta) {
			return nil
		}
		if k, _ := b.Cursor().First(); k != nil {
			empty = false
		}
		return nil
	})
	return empty
}

// nested returns the bucket at path from the root, creating what is
// missing.
func nested(tx *bolt.Tx, path ...[]byte) (*bolt.Bucket, error) {
	b, err := tx.CreateBucketIfNotExists(path[0])
	for _, p := range path[1:] {
		if err != nil {
			return nil, err
		}
		b, err = b.CreateBucketIfNotExists(p)
	}
	return b, err
}

func putRaw(tx *bolt.Tx, key, value []byte, path ...[]byte) error {
	b, err := nested(tx, path...)
	if err != nil {
		return err
	}
	return b.Put(key, value)
}

func putJSONAt(tx *bolt.Tx, key []byte, v any, path ...[]byte) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %q: %w", key, err)
	}
	return putRaw(tx, key, raw, path...)
}

func importTx(tx *bolt.Tx, d *storecopy.Dump) error {
	for _, t := range d.Tenants {
		if err := putJSONAt(tx, []byte(t.Name), newTenantRecord(t), bucketTenants); err != nil {
			return err
		}
	}
	for _, p := range d.Projects {
		if err := putJSONAt(tx, []byte(p.Name), newProjectRecord(p), bucketProjects, []byte(p.Tenant)); err != nil {
			return err
		}
	}
	for _, k := range d.Keys {
		if err := putJSONAt(tx, []byte(k.ID), newKeyRecord(k), bucketKeys); err != nil {
			return err
		}
	}
	for _, m := range d.Mirrors {
		if !m.GroupsSyncedAt.IsZero() {
			if err := putMirror(tx, m.Tenant, mirrorRecord{GroupsSyncedAt: m.GroupsSyncedAt}); err != nil {
				return err
			}
		}
		if m.QueueSeq > 0 {
			b, err := nested(tx, bucketQueues, []byte(m.Tenant))
			if err == nil {
				err = b.SetSequence(m.QueueSeq)
			}
			if err != nil {
				return err
			}
		}
		if m.Revision > 0 {
			b, err := nested(tx, bucketGroups, []byte(m.Tenant))
			if err == nil {
				err = b.SetSequence(m.Revision)
			}
			if err != nil {
				return err
			}
		}
	}
	for _, op := range d.Operations {
		if err := putOp(tx, op); err != nil {
			return err
		}
	}
	for _, q := range d.Queue {
		if err := putRaw(tx, seqKey(q.Seq), []byte(q.Operation), bucketQueues, []byte(q.Tenant), []byte(q.Project)); err != nil {
			return err
		}
	}
	for _, p := range d.Pending {
		if err := putRaw(tx, []byte(p.Project), seqKey(uint64(p.N)), bucketPending, []byte(p.Tenant)); err != nil {
			return err
		}
	}
	for _, ik := range d.Idempotency {
		r := idemRecord{Fingerprint: ik.Fingerprint, Operation: ik.Operation, Expires: ik.Expires}
		if err := putJSONAt(tx, []byte(ik.Key), r, bucketIdem, []byte(ik.Scope)); err != nil {
			return err
		}
	}
	for _, g := range d.Groups {
		if err := putJSONAt(tx, groupKey(g.Name), records.NewGroup(g), bucketGroups, []byte(g.Name.Tenant)); err != nil {
			return err
		}
	}
	for _, v := range d.Versions {
		if err := putRaw(tx, []byte(v.Project), seqKey(v.Version), bucketVersions, []byte(v.Tenant)); err != nil {
			return err
		}
	}
	for _, m := range d.Members {
		err := putJSONAt(tx, []byte(groups.MemberCursor(m.User)), records.NewUser(m.User), bucketMembers, []byte(m.Group.Tenant), groupKey(m.Group))
		if err != nil {
			return err
		}
	}
	for _, u := range d.KnownUsers {
		if err := putJSONAt(tx, append([]byte{u.Kind, 0}, u.Key...), records.NewUser(u.User), bucketUsers, []byte(u.Tenant)); err != nil {
			return err
		}
	}
	for _, m := range d.Deleted {
		r := deletedRecord{ID: m.User.ID, Email: m.User.Email, DeletedAt: m.User.DeletedAt, Expires: m.User.Expires}
		if err := putJSONAt(tx, append([]byte("d\x00"), m.Key...), r, bucketUsers, []byte(m.Tenant)); err != nil {
			return err
		}
	}
	for _, o := range d.Owners {
		r := records.Owners{UpstreamID: o.Owners.UpstreamID, Owners: make([]records.User, 0, len(o.Owners.Users))}
		for _, u := range o.Owners.Users {
			r.Owners = append(r.Owners, records.NewUser(u))
		}
		if err := putJSONAt(tx, groupKey(o.Group), r, bucketOwners, []byte(o.Group.Tenant)); err != nil {
			return err
		}
	}
	for _, dl := range d.Deliveries {
		v := binary.BigEndian.AppendUint64(nil, uint64(dl.Record.Expires.UnixNano()))
		if dl.Record.Pending != nil {
			pending, err := json.Marshal(dl.Record.Pending)
			if err != nil {
				return fmt.Errorf("encode pending delivery: %w", err)
			}
			v = append(v, pending...)
		}
		if err := putRaw(tx, dl.Digest[:], v, bucketWebhooks, []byte(dl.Tenant)); err != nil {
			return err
		}
	}
	for _, n := range d.Notices {
		if err := putJSONAt(tx, []byte(n.Kind), noticeRecord{Text: n.Text, Expires: n.Expires.UTC()}, bucketNotices, []byte(n.Tenant)); err != nil {
			return err
		}
	}
	for _, e := range d.Audit {
		if err := putJSONAt(tx, []byte(e.ID), newAuditRecord(e), bucketAudit); err != nil {
			return err
		}
		if e.Tenant != "" {
			if err := putRaw(tx, []byte(e.ID), []byte{}, bucketAuditTenant, []byte(e.Tenant)); err != nil {
				return err
			}
		}
	}
	return nil
}
