package boltstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/groupgate/groupgate/audit"
)

// The audit log (audit.Store):
//
//	audit                  <audit id> -> auditRecord
//	audit_tenant/<tenant>  <audit id> -> "" (index of the tenant's entries)
//
// Keys are the IDs as text: they sort by time, so a time bound is a key
// bound and newest-first is a cursor walking back from the end. An entry's
// time is not stored: it is the instant in its ID. Entries without a tenant
// are in the primary bucket only. The buckets are created by the first
// append, so files written before the audit log existed need no migration.
var (
	bucketAudit       = []byte("audit")
	bucketAuditTenant = []byte("audit_tenant")
)

var _ audit.Store = (*Store)(nil)

const (
	// auditScanBudget bounds the entries one QueryAudit examines, and so
	// how long it holds a read transaction (which keeps freed pages from
	// reuse) when few entries match.
	auditScanBudget = 4096
	// auditPurgeBatch bounds the keys one purge transaction deletes.
	auditPurgeBatch = 2048
)

// auditRecord is how an audit entry is stored; the ID is the key and the
// time is in it. Field names are part of the file format.
type auditRecord struct {
	Actor       string `json:"actor"`
	Role        string `json:"role,omitempty"`
	Tenant      string `json:"tenant,omitempty"`
	Project     string `json:"project,omitempty"`
	Action      string `json:"action"`
	Target      string `json:"target,omitempty"`
	Outcome     string `json:"outcome"`
	Status      int    `json:"status,omitempty"`
	RequestID   string `json:"requestId,omitempty"`
	OperationID string `json:"operationId,omitempty"`
	Detail      string `json:"detail,omitempty"`
}

func newAuditRecord(e audit.Entry) auditRecord {
	return auditRecord{
		Actor: e.Actor, Role: e.Role, Tenant: e.Tenant, Project: e.Project, Action: e.Action,
		Target: e.Target, Outcome: e.Outcome, Status: e.Status, RequestID: e.RequestID,
		OperationID: e.OperationID, Detail: e.Detail,
	}
}

func (r auditRecord) entry(id string, at time.Time) audit.Entry {
	return audit.Entry{
		ID: id, Time: at, Actor: r.Actor, Role: r.Role, Tenant: r.Tenant, Project: r.Project,
		Action: r.Action, Target: r.Target, Outcome: r.Outcome, Status: r.Status,
		RequestID: r.RequestID, OperationID: r.OperationID, Detail: r.Detail,
	}
}

// AppendAudit implements audit.Store.
func (s *Store) AppendAudit(ctx context.Context, entries ...audit.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	values := make([][]byte, len(entries))
	for i, e := range entries {
		if err := e.Validate(); err != nil {
			return err
		}
		v, err := json.Marshal(newAuditRecord(e))
		if err != nil {
			return fmt.Errorf("encode audit entry %s: %w", e.ID, err)
		}
		values[i] = v
	}
	return s.write(ctx, func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketAudit)
		if err != nil {
			return err
		}
		for i, e := range entries {
			k := []byte(e.ID)
			if b.Get(k) != nil {
				return fmt.Errorf("%w: %s", audit.ErrDuplicate, e.ID)
			}
			if err := b.Put(k, values[i]); err != nil {
				return err
			}
			if e.Tenant == "" {
				continue
			}
			idx, err := auditTenantBucket(tx, e.Tenant)
			if err != nil {
				return err
			}
			if err := idx.Put(k, []byte{}); err != nil {
				return err
			}
		}
		return nil
	})
}

func auditTenantBucket(tx *bolt.Tx, tenant string) (*bolt.Bucket, error) {
	root, err := tx.CreateBucketIfNotExists(bucketAuditTenant)
	if err != nil {
		return nil, err
	}
	return root.CreateBucketIfNotExists([]byte(tenant))
}

// QueryAudit implements audit.Store. A tenant filter walks that tenant's
// index; other filters walk the whole log between the time bounds. Either
// way at most auditScanBudget entries are examined.
func (s *Store) QueryAudit(ctx context.Context, f audit.Filter, before string, limit int) ([]audit.Entry, string, error) {
	if err := audit.CheckQuery(before, limit); err != nil {
		return nil, "", err
	}
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	// Keys from lo (inclusive) to hi (exclusive unless hiIncl).
	var lo []byte
	if !f.Since.IsZero() {
		lo = []byte(audit.MakeID(f.Since, 0))
	}
	var hi []byte
	hiIncl := false
	if !f.Until.IsZero() {
		hi, hiIncl = []byte(audit.MakeID(f.Until, math.MaxUint32)), true
	}
	if before != "" && (hi == nil || bytes.Compare([]byte(before), hi) <= 0) {
		hi, hiIncl = []byte(before), false
	}

	var out []audit.Entry
	var next string
	err := s.db.View(func(tx *bolt.Tx) error {
		primary := tx.Bucket(bucketAudit)
		if primary == nil {
			return nil
		}
		walk := primary
		if f.Tenant != "" {
			root := tx.Bucket(bucketAuditTenant)
			if root == nil {
				return nil
			}
			if walk = root.Bucket([]byte(f.Tenant)); walk == nil {
				return nil
			}
		}
		c := walk.Cursor()
		var last []byte // the oldest key examined
		examined := 0
		for k := seekBack(c, hi, hiIncl); k != nil && (lo == nil || bytes.Compare(k, lo) >= 0); k, _ = c.Prev() {
			if examined == auditScanBudget {
				next = string(last)
				return nil
			}
			examined++
			v := primary.Get(k)
			if v == nil {
				return fmt.Errorf("audit index of tenant %q names missing entry %s", f.Tenant, k)
			}
			e, err := decodeAuditEntry(k, v)
			if err != nil {
				return err
			}
			if f.Match(e) {
				if len(out) == limit {
					next = out[len(out)-1].ID
					return nil
				}
				out = append(out, e)
			}
			last = k // valid until the transaction ends; copied by string()
		}
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("query audit log: %w", err)
	}
	return out, next, nil
}

// seekBack positions c on the last key below hi (at or below it if incl),
// or on the last key if hi is nil, and returns that key.
func seekBack(c *bolt.Cursor, hi []byte, incl bool) []byte {
	if hi == nil {
		k, _ := c.Last()
		return k
	}
	k, _ := c.Seek(hi)
	switch {
	case k == nil:
		k, _ = c.Last()
	case incl && bytes.Equal(k, hi):
	default:
		k, _ = c.Prev()
	}
	return k
}

func decodeAuditEntry(k, v []byte) (audit.Entry, error) {
	id := string(k)
	at, _, err := audit.ParseID(id)
	if err != nil {
		return audit.Entry{}, fmt.Errorf("audit entry key %q: %w", k, err)
	}
	var r auditRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return audit.Entry{}, fmt.Errorf("decode audit entry %s: %w", id, err)
	}
	return r.entry(id, at), nil
}

// PurgeAudit implements audit.Store. It deletes at most auditPurgeBatch keys
// per transaction, so a long-overdue purge neither builds one huge
// transaction nor holds up other writers for long.
func (s *Store) PurgeAudit(ctx context.Context, before time.Time) (int, error) {
	bound := []byte(audit.MakeID(before, 0))
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		var entries, keys int
		err := s.write(ctx, func(tx *bolt.Tx) error {
			entries, keys = 0, 0 // the function may run again after a failed batch
			b := tx.Bucket(bucketAudit)
			if b == nil {
				return nil
			}
			n, err := deleteBelow(b, bound, auditPurgeBatch)
			if err != nil {
				return err
			}
			entries, keys = n, n
			root := tx.Bucket(bucketAuditTenant)
			if root == nil {
				return nil
			}
			var tenants, empty [][]byte
			if err := root.ForEachBucket(func(name []byte) error {
				tenants = append(tenants, bytes.Clone(name))
				return nil
			}); err != nil {
				return err
			}
			for _, t := range tenants {
				if keys == auditPurgeBatch {
					break
				}
				idx := root.Bucket(t)
				n, err := deleteBelow(idx, bound, auditPurgeBatch-keys)
				if err != nil {
					return err
				}
				keys += n
				if k, _ := idx.Cursor().First(); k == nil {
					empty = append(empty, t)
				}
			}
			for _, t := range empty {
				if err := root.DeleteBucket(t); err != nil {
					return err
				}
			}
			return nil
		})
		total += entries
		if err != nil {
			return total, fmt.Errorf("purge audit log: %w", err)
		}
		if keys < auditPurgeBatch {
			return total, nil
		}
	}
}

// deleteBelow deletes up to max keys of b that sort before bound, oldest
// first, and returns how many it deleted.
func deleteBelow(b *bolt.Bucket, bound []byte, max int) (int, error) {
	var doomed [][]byte
	c := b.Cursor()
	for k, _ := c.First(); k != nil && bytes.Compare(k, bound) < 0 && len(doomed) < max; k, _ = c.Next() {
		doomed = append(doomed, bytes.Clone(k))
	}
	for _, k := range doomed {
		if err := b.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(doomed), nil
}
