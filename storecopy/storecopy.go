// Package storecopy moves a whole store from one backend to another
// (groupgate copy-store): a Dump holds every record of a store as it is
// stored, and each backend exports one and imports one into an empty store.
//
// Import writes records as they are: no domain rule runs again, no id, seq,
// revision or version is handed out anew, so a copied store behaves as the
// original does (the same operations in the same queue order, the same
// idempotency replays, the same audit ids and cursors).
//
// Not copied: what coordinates running replicas (PostgreSQL's leases,
// pacing marks and replica heartbeats: a copy is made with the service
// stopped, and a new leader waits one interval anyway) and the tenants
// generation (a counter readers compare for change, in memory in bbolt).
package storecopy

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/groupgate/groupgate/audit"
	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/queue"
	"github.com/groupgate/groupgate/tenants"
	"github.com/groupgate/groupgate/webhooks"
)

// ErrNotEmpty means the target store already holds records: a copy goes
// into an empty store only, and writes nothing otherwise.
var ErrNotEmpty = errors.New("the target store is not empty")

// Exporter is a store that can be read whole.
type Exporter interface {
	// Export reads every record in one consistent snapshot.
	Export(ctx context.Context) (*Dump, error)
}

// Importer is a store that can be written whole.
type Importer interface {
	// Import writes every record of d in one transaction, or nothing
	// (ErrNotEmpty when the store already holds records).
	Import(ctx context.Context, d *Dump) error
}

// Store is a backend that can be copied from and to.
type Store interface {
	Exporter
	Importer
}

// Dump is every record of a store. Its slices are in Sort's order once
// sorted; backends may fill them in any order.
type Dump struct {
	Tenants  []tenants.Tenant
	Projects []tenants.Project
	Keys     []tenants.Key
	// Mirrors are each tenant's queue and revision sequences and the time
	// its group list was last read whole; all-zero ones are left out.
	Mirrors     []Mirror
	Operations  []queue.Operation
	Queue       []Queued
	Pending     []Pending
	Idempotency []Idempotency
	Groups      []groups.Group
	Versions    []Version
	Members     []Member
	KnownUsers  []KnownUser
	Deleted     []Deleted
	Owners      []Owners
	Deliveries  []Delivery
	Notices     []Notice
	Audit       []audit.Entry
}

// Mirror is what a store keeps per tenant about its queue and mirror as a
// whole.
type Mirror struct {
	Tenant string
	// QueueSeq is the last seq handed to an appended operation.
	QueueSeq uint64
	// Revision is the last group revision handed out.
	Revision       uint64
	GroupsSyncedAt time.Time
}

// Queued is an operation's place on its project's queue.
type Queued struct {
	Tenant, Project string
	Seq             uint64
	Operation       string
}

// Pending is the count of a project's queued operations (never 0 here).
type Pending struct {
	Tenant, Project string
	N               int
}

// Idempotency is a remembered Idempotency-Key.
type Idempotency struct {
	Scope, Key, Operation, Fingerprint string
	Expires                            time.Time
}

// Version is the change counter of a project's groups.
type Version struct {
	Tenant, Project string
	Version         uint64
}

// Member is one member of a mirrored group.
type Member struct {
	Group groups.Name
	User  groups.User
}

// KnownUser is a user a tenant's mirror resolved, under one of its two
// keys: by id ("i") or by e-mail ("e"), Key lower-cased.
type KnownUser struct {
	Tenant string
	Kind   byte
	Key    string
	User   groups.User
}

// Deleted is a deleted-user mark under its lower-cased id or e-mail.
type Deleted struct {
	Tenant, Key string
	User        groups.DeletedUser
}

// Owners are a mirrored group's owners.
type Owners struct {
	Group  groups.Name
	Owners groups.Owners
}

// Delivery is a webhook delivery record.
type Delivery struct {
	Tenant string
	Digest [32]byte
	Record webhooks.Record
}

// Notice is what an application event leaves in /readyz.
type Notice struct {
	Tenant, Kind, Text string
	Expires            time.Time
}

// Count is the number of records of one kind.
type Count struct {
	Kind string
	N    int
}

// Counts returns the number of records of every kind, in a fixed order.
func (d *Dump) Counts() []Count {
	return []Count{
		{"tenants", len(d.Tenants)}, {"projects", len(d.Projects)}, {"keys", len(d.Keys)},
		{"mirrors", len(d.Mirrors)}, {"operations", len(d.Operations)}, {"queued", len(d.Queue)},
		{"pending counts", len(d.Pending)}, {"idempotency keys", len(d.Idempotency)},
		{"groups", len(d.Groups)}, {"group versions", len(d.Versions)}, {"members", len(d.Members)},
		{"known users", len(d.KnownUsers)}, {"deleted-user marks", len(d.Deleted)}, {"owners", len(d.Owners)},
		{"webhook deliveries", len(d.Deliveries)}, {"webhook notices", len(d.Notices)}, {"audit entries", len(d.Audit)},
	}
}

// Empty reports whether d holds no record.
func (d *Dump) Empty() bool {
	for _, c := range d.Counts() {
		if c.N > 0 {
			return false
		}
	}
	return true
}

// Sort puts every slice in a fixed order (by each record's key in the
// store), so that two dumps of the same records compare equal.
func (d *Dump) Sort() {
	slices.SortFunc(d.Tenants, func(a, b tenants.Tenant) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(d.Projects, func(a, b tenants.Project) int {
		return cmp.Or(strings.Compare(a.Tenant, b.Tenant), strings.Compare(a.Name, b.Name))
	})
	slices.SortFunc(d.Keys, func(a, b tenants.Key) int { return strings.Compare(a.ID, b.ID) })
	slices.SortFunc(d.Mirrors, func(a, b Mirror) int { return strings.Compare(a.Tenant, b.Tenant) })
	slices.SortFunc(d.Operations, func(a, b queue.Operation) int { return strings.Compare(a.ID, b.ID) })
	slices.SortFunc(d.Queue, func(a, b Queued) int {
		return cmp.Or(strings.Compare(a.Tenant, b.Tenant), strings.Compare(a.Project, b.Project), cmp.Compare(a.Seq, b.Seq))
	})
	slices.SortFunc(d.Pending, func(a, b Pending) int {
		return cmp.Or(strings.Compare(a.Tenant, b.Tenant), strings.Compare(a.Project, b.Project))
	})
	slices.SortFunc(d.Idempotency, func(a, b Idempotency) int {
		return cmp.Or(strings.Compare(a.Scope, b.Scope), strings.Compare(a.Key, b.Key))
	})
	slices.SortFunc(d.Groups, func(a, b groups.Group) int { return compareNames(a.Name, b.Name) })
	slices.SortFunc(d.Versions, func(a, b Version) int {
		return cmp.Or(strings.Compare(a.Tenant, b.Tenant), strings.Compare(a.Project, b.Project))
	})
	slices.SortFunc(d.Members, func(a, b Member) int {
		return cmp.Or(compareNames(a.Group, b.Group), strings.Compare(groups.MemberCursor(a.User), groups.MemberCursor(b.User)))
	})
	slices.SortFunc(d.KnownUsers, func(a, b KnownUser) int {
		return cmp.Or(strings.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Kind, b.Kind), strings.Compare(a.Key, b.Key))
	})
	slices.SortFunc(d.Deleted, func(a, b Deleted) int {
		return cmp.Or(strings.Compare(a.Tenant, b.Tenant), strings.Compare(a.Key, b.Key))
	})
	slices.SortFunc(d.Owners, func(a, b Owners) int { return compareNames(a.Group, b.Group) })
	slices.SortFunc(d.Deliveries, func(a, b Delivery) int {
		return cmp.Or(strings.Compare(a.Tenant, b.Tenant), bytes.Compare(a.Digest[:], b.Digest[:]))
	})
	slices.SortFunc(d.Notices, func(a, b Notice) int {
		return cmp.Or(strings.Compare(a.Tenant, b.Tenant), strings.Compare(a.Kind, b.Kind))
	})
	slices.SortFunc(d.Audit, func(a, b audit.Entry) int { return strings.Compare(a.ID, b.ID) })
}

func compareNames(a, b groups.Name) int {
	return cmp.Or(strings.Compare(a.Tenant, b.Tenant), strings.Compare(a.Project, b.Project), strings.Compare(a.Key(), b.Key()))
}

// Copy exports from and imports the dump into to, then exports to again
// and checks that every kind has as many records as were read. It returns
// the counts read.
func Copy(ctx context.Context, from Exporter, to Store) ([]Count, error) {
	d, err := from.Export(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the source: %w", err)
	}
	if err := to.Import(ctx, d); err != nil {
		return nil, fmt.Errorf("write the target: %w", err)
	}
	got, err := to.Export(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the target back: %w", err)
	}
	want, have := d.Counts(), got.Counts()
	var diffs []string
	for i := range want {
		if want[i] != have[i] {
			diffs = append(diffs, fmt.Sprintf("%s: %d read, %d in the target", want[i].Kind, want[i].N, have[i].N))
		}
	}
	if len(diffs) > 0 {
		return want, fmt.Errorf("the copy differs from the source: %s", strings.Join(diffs, "; "))
	}
	return want, nil
}
