package boltstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/groupgate/groupgate/tenants"
)

// Tenants, projects and keys:
//
//	tenants                <TENANT> -> tenantRecord
//	projects/<tenant>      <PROJECT> -> projectRecord
//	keys                   <key id> -> keyRecord
var (
	bucketTenants  = []byte("tenants")
	bucketProjects = []byte("projects")
	bucketKeys     = []byte("keys")
)

var _ tenants.Store = (*Store)(nil)

func tenantBuckets(tx *bolt.Tx) error {
	for _, b := range [][]byte{bucketTenants, bucketProjects, bucketKeys} {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return err
		}
	}
	return nil
}

// Generation implements tenants.Store: an in-process counter bumped after
// every commit that changes a tenant, a project or a key (not a key's last
// use). One process owns the file, so it sees every write. ErrClosed after
// Close.
func (s *Store) Generation(ctx context.Context) (uint64, error) {
	select {
	case <-s.closing:
		return 0, ErrClosed
	default:
		return s.gens.tenants.Load(), nil
	}
}

// tenantsWrite runs fn as a write and, once it has committed, moves the
// generation; a refused or aborted write leaves it as it is.
func (s *Store) tenantsWrite(ctx context.Context, fn func(*bolt.Tx) error) error {
	if err := s.write(ctx, fn); err != nil {
		return err
	}
	s.gens.tenantsChanged()
	return nil
}

// CreateTenant implements tenants.Store.
func (s *Store) CreateTenant(ctx context.Context, t tenants.Tenant) error {
	return s.tenantsWrite(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTenants)
		if b.Get([]byte(t.Name)) != nil {
			return fmt.Errorf("tenant %s: %w", t.Name, tenants.ErrConflict)
		}
		return putJSON(b, t.Name, newTenantRecord(t))
	})
}

// Tenant implements tenants.Store.
func (s *Store) Tenant(ctx context.Context, name string) (tenants.Tenant, error) {
	var t tenants.Tenant
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		t, err = getTenant(tx, name)
		return err
	})
	return t, err
}

// Tenants implements tenants.Store.
func (s *Store) Tenants(ctx context.Context) ([]tenants.Tenant, error) {
	out := []tenants.Tenant{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTenants).ForEach(func(_, v []byte) error {
			var r tenantRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode tenant: %w", err)
			}
			out = append(out, r.tenant())
			return nil
		})
	})
	return out, err
}

// UpdateTenant implements tenants.Store.
func (s *Store) UpdateTenant(ctx context.Context, name string, fn func(*tenants.Tenant, *[]tenants.Project) error) (tenants.Tenant, []tenants.Project, error) {
	var t tenants.Tenant
	var projects []tenants.Project
	err := s.tenantsWrite(ctx, func(tx *bolt.Tx) error {
		var err error
		if t, err = getTenant(tx, name); err != nil {
			return err
		}
		if projects, err = getProjects(tx, name); err != nil {
			return err
		}
		if err := tenants.ApplyUpdate(name, &t, &projects, fn); err != nil {
			return err
		}
		if err := putJSON(tx.Bucket(bucketTenants), name, newTenantRecord(t)); err != nil {
			return err
		}
		pb, err := tx.Bucket(bucketProjects).CreateBucketIfNotExists([]byte(name))
		if err != nil {
			return err
		}
		for _, p := range projects {
			if err := putJSON(pb, p.Name, newProjectRecord(p)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return tenants.Tenant{}, nil, err
	}
	return t, projects, nil
}

// errRekeyed reports an update function that changed what records are
// stored under; the update writes nothing.
var errRekeyed = tenants.ErrRekeyed

// Project implements tenants.Store.
func (s *Store) Project(ctx context.Context, tenant, name string) (tenants.Project, error) {
	var p tenants.Project
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketProjects).Bucket([]byte(tenant))
		if b == nil {
			return fmt.Errorf("project %s:%s: %w", tenant, name, tenants.ErrNotFound)
		}
		v := b.Get([]byte(name))
		if v == nil {
			return fmt.Errorf("project %s:%s: %w", tenant, name, tenants.ErrNotFound)
		}
		var r projectRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("decode project %s:%s: %w", tenant, name, err)
		}
		p = r.project(tenant)
		return nil
	})
	return p, err
}

// Projects implements tenants.Store.
func (s *Store) Projects(ctx context.Context, tenant string) ([]tenants.Project, error) {
	var out []tenants.Project
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		out, err = getProjects(tx, tenant)
		return err
	})
	return out, err
}

// ProjectsByIssuer implements tenants.Store. It scans every project: there
// are few, and a token names no tenant to narrow the search by.
func (s *Store) ProjectsByIssuer(ctx context.Context, issuer string) ([]tenants.Project, error) {
	var out []tenants.Project
	err := s.db.View(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketProjects)
		return root.ForEachBucket(func(tenant []byte) error {
			return root.Bucket(tenant).ForEach(func(_, v []byte) error {
				if !bytes.Contains(v, []byte(`"issuer"`)) {
					return nil
				}
				var r projectRecord
				if err := json.Unmarshal(v, &r); err != nil {
					return fmt.Errorf("decode project: %w", err)
				}
				if r.Identity != nil && r.Identity.Issuer == issuer {
					out = append(out, r.project(string(tenant)))
				}
				return nil
			})
		})
	})
	return out, err
}

// CreateKey implements tenants.Store.
func (s *Store) CreateKey(ctx context.Context, k tenants.Key) error {
	return s.tenantsWrite(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketKeys)
		if b.Get([]byte(k.ID)) != nil {
			return fmt.Errorf("key %s: %w", k.ID, tenants.ErrConflict)
		}
		return putJSON(b, k.ID, newKeyRecord(k))
	})
}

// Key implements tenants.Store.
func (s *Store) Key(ctx context.Context, id string) (tenants.Key, error) {
	var k tenants.Key
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		k, err = getKey(tx, id)
		return err
	})
	return k, err
}

// Keys implements tenants.Store.
func (s *Store) Keys(ctx context.Context, tenant string) ([]tenants.Key, error) {
	out := []tenants.Key{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketKeys).ForEach(func(_, v []byte) error {
			var r keyRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode key: %w", err)
			}
			if tenant == "" || r.Tenant == tenant {
				out = append(out, r.key())
			}
			return nil
		})
	})
	sortKeys(out)
	return out, err
}

// UpdateKey implements tenants.Store.
func (s *Store) UpdateKey(ctx context.Context, id string, fn func(*tenants.Key) error) (tenants.Key, error) {
	var k tenants.Key
	err := s.tenantsWrite(ctx, func(tx *bolt.Tx) error {
		var err error
		if k, err = getKey(tx, id); err != nil {
			return err
		}
		if err := fn(&k); err != nil {
			return err
		}
		if k.ID != id {
			return fmt.Errorf("update key %s: id changed to %q: %w", id, k.ID, errRekeyed)
		}
		return putJSON(tx.Bucket(bucketKeys), id, newKeyRecord(k))
	})
	if err != nil {
		return tenants.Key{}, err
	}
	return k, nil
}

// TouchKeys implements tenants.Store.
func (s *Store) TouchKeys(ctx context.Context, used map[string]time.Time) error {
	return s.write(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketKeys)
		for id, at := range used {
			k, err := getKey(tx, id)
			if err != nil {
				continue // unknown (e.g. a bootstrap operator key)
			}
			if at.After(k.LastUsedAt) {
				k.LastUsedAt = at
				if err := putJSON(b, id, newKeyRecord(k)); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

func getTenant(tx *bolt.Tx, name string) (tenants.Tenant, error) {
	v := tx.Bucket(bucketTenants).Get([]byte(name))
	if v == nil {
		return tenants.Tenant{}, fmt.Errorf("tenant %s: %w", name, tenants.ErrNotFound)
	}
	var r tenantRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return tenants.Tenant{}, fmt.Errorf("decode tenant %s: %w", name, err)
	}
	return r.tenant(), nil
}

func getProjects(tx *bolt.Tx, tenant string) ([]tenants.Project, error) {
	out := []tenants.Project{}
	b := tx.Bucket(bucketProjects).Bucket([]byte(tenant))
	if b == nil {
		return out, nil
	}
	err := b.ForEach(func(_, v []byte) error {
		var r projectRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("decode project: %w", err)
		}
		out = append(out, r.project(tenant))
		return nil
	})
	return out, err
}

func getKey(tx *bolt.Tx, id string) (tenants.Key, error) {
	v := tx.Bucket(bucketKeys).Get([]byte(id))
	if v == nil {
		return tenants.Key{}, fmt.Errorf("key %s: %w", id, tenants.ErrNotFound)
	}
	var r keyRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return tenants.Key{}, fmt.Errorf("decode key %s: %w", id, err)
	}
	return r.key(), nil
}

func putJSON(b *bolt.Bucket, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	return b.Put([]byte(key), data)
}
