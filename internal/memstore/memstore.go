// Package memstore is an in-memory groups.Store and webhooks.Store for
// tests: the mirror, the operation queue and the webhook delivery records
// of every tenant in maps, under one mutex.
//
// It exists to prove that the store contract (groups.Store, groups.Tx,
// queue.Tx) assumes nothing of bbolt: the conformance suites run
// against it as against the bbolt file, and the domain's own tests
// (groups.Service, groups.Reconciler) run on it without a file. Every
// UpdateDeliveries runs its function twice too. It takes the
// contract's freedoms where a careless caller would notice: every Update
// and UpdateOperation runs its function twice on a fresh copy of the data
// and keeps only the second run, and a write through View fails.
package memstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/queue"
	"github.com/groupgate/groupgate/webhooks"
)

// Store is an in-memory groups.Store. The zero value is not usable; call
// New. Safe for concurrent use.
type Store struct {
	mu sync.Mutex
	st *state
}

var (
	_ groups.Store   = (*Store)(nil)
	_ webhooks.Store = (*Store)(nil)
	_ webhooks.Tx    = (*tx)(nil)
)

// New returns an empty store.
func New() *Store { return &Store{st: newState()} }

// entry is one operation on a project's queue.
type entry struct {
	seq uint64
	id  string
}

// state is every record. Keys: tenant, then a group's Cursor, a member's
// MemberCursor, or a known user's "i\x00"/"e\x00" + lower-cased id or
// e-mail.
type state struct {
	ops      map[string]queue.Operation
	queues   map[string]map[string][]entry // tenant, project
	seqs     map[string]uint64
	idem     map[string]map[string]queue.IdempotencyRecord // scope, key
	groups   map[string]map[string]groups.Group
	revs     map[string]uint64
	versions map[string]uint64                   // tenant \x00 project
	members  map[string]map[string]groups.User   // tenant \x00 group cursor
	users    map[string]map[string]groups.User   // tenant
	owners   map[string]map[string]groups.Owners // tenant, group cursor
	synced   map[string]time.Time                // tenant
	// deleted holds the deleted-user marks by lower-cased id or e-mail;
	// deliveries the webhook delivery records by digest.
	deleted    map[string]map[string]groups.DeletedUser // tenant
	deliveries map[string]map[[32]byte]webhooks.Record  // tenant
}

func newState() *state {
	return &state{
		ops: map[string]queue.Operation{}, queues: map[string]map[string][]entry{}, seqs: map[string]uint64{},
		idem: map[string]map[string]queue.IdempotencyRecord{}, groups: map[string]map[string]groups.Group{},
		revs: map[string]uint64{}, versions: map[string]uint64{}, members: map[string]map[string]groups.User{},
		users: map[string]map[string]groups.User{}, owners: map[string]map[string]groups.Owners{}, synced: map[string]time.Time{},
		deleted: map[string]map[string]groups.DeletedUser{}, deliveries: map[string]map[[32]byte]webhooks.Record{},
	}
}

// clone2 copies a map of maps, so writes to the copy leave m alone.
func clone2[K1, K2 comparable, V any](m map[K1]map[K2]V) map[K1]map[K2]V {
	out := make(map[K1]map[K2]V, len(m))
	for k, v := range m {
		out[k] = maps.Clone(v)
	}
	return out
}

// clone returns a copy of st that shares nothing writable with it (stored
// values are never modified in place).
func (st *state) clone() *state {
	queues := make(map[string]map[string][]entry, len(st.queues))
	for t, ps := range st.queues {
		queues[t] = make(map[string][]entry, len(ps))
		for p, es := range ps {
			queues[t][p] = slices.Clone(es)
		}
	}
	return &state{
		ops: maps.Clone(st.ops), queues: queues, seqs: maps.Clone(st.seqs), idem: clone2(st.idem),
		groups: clone2(st.groups), revs: maps.Clone(st.revs), versions: maps.Clone(st.versions),
		members: clone2(st.members), users: clone2(st.users), owners: clone2(st.owners), synced: maps.Clone(st.synced),
		deleted: clone2(st.deleted), deliveries: clone2(st.deliveries),
	}
}

// Update implements groups.Store: fn runs twice, each time on a fresh copy
// of the data under the store's one lock, and the second run's data is
// kept if fn succeeds both times.
func (s *Store) Update(ctx context.Context, tenant string, fn func(groups.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var work *state
	for range 2 {
		work = s.st.clone()
		if err := fn(&tx{st: work, tenant: tenant}); err != nil {
			return err
		}
	}
	s.st = work
	return nil
}

// UpdateDeliveries implements webhooks.Store as Update implements
// groups.Store: fn runs twice, each time on a fresh copy.
func (s *Store) UpdateDeliveries(ctx context.Context, tenant string, fn func(webhooks.Tx) error) error {
	return s.Update(ctx, tenant, func(t groups.Tx) error { return fn(t.(*tx)) })
}

// PruneDeliveries implements webhooks.Store.
func (s *Store) PruneDeliveries(ctx context.Context, now time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := prune(s.st.deliveries, func(r webhooks.Record) bool { return !r.Expires.After(now) })
	n += prune(s.st.deleted, func(d groups.DeletedUser) bool { return !d.Expires.After(now) })
	return n, nil
}

// prune deletes the entries of m's maps that are expired and returns how
// many it deleted.
func prune[K1, K2 comparable, V any](m map[K1]map[K2]V, expired func(V) bool) int {
	n := 0
	for _, vs := range m {
		for k, v := range vs {
			if expired(v) {
				delete(vs, k)
				n++
			}
		}
	}
	return n
}

// DeletedUsers implements groups.Store.
func (s *Store) DeletedUsers(ctx context.Context, tenant string, ids []string) (map[string]groups.DeletedUser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return (&tx{st: s.st, tenant: tenant, readOnly: true}).DeletedUsers(ids)
}

// View implements groups.Store.
func (s *Store) View(ctx context.Context, tenant string, fn func(groups.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return fn(&tx{st: s.st, tenant: tenant, readOnly: true})
}

// UpdateOperation implements groups.Store; fn runs twice, as in Update.
func (s *Store) UpdateOperation(ctx context.Context, id string, fn func(*queue.Operation) error) (queue.Operation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	stored, ok := s.st.ops[id]
	if !ok {
		return queue.Operation{}, fmt.Errorf("operation %s: %w", id, queue.ErrNotFound)
	}
	var op queue.Operation
	for range 2 {
		op = stored
		if err := fn(&op); err != nil {
			return queue.Operation{}, err
		}
	}
	s.st.ops[id] = op
	return op, nil
}

// Operation implements groups.Store.
func (s *Store) Operation(ctx context.Context, id string) (queue.Operation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	op, ok := s.st.ops[id]
	if !ok {
		return queue.Operation{}, fmt.Errorf("operation %s: %w", id, queue.ErrNotFound)
	}
	return op, nil
}

// Heads implements groups.Store.
func (s *Store) Heads(ctx context.Context, tenant string) ([]queue.Operation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var heads []queue.Operation
	for _, p := range slices.Sorted(maps.Keys(s.st.queues[tenant])) {
		if es := s.st.queues[tenant][p]; len(es) > 0 {
			heads = append(heads, s.st.ops[es[0].id])
		}
	}
	return heads, nil
}

// Depth implements groups.Store.
func (s *Store) Depth(ctx context.Context, tenant string) (queue.Depth, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.depth(tenant), nil
}

func (st *state) depth(tenant string) queue.Depth {
	d := queue.Depth{Projects: map[string]int{}}
	for p, es := range st.queues[tenant] {
		if len(es) > 0 {
			d.Projects[p] = len(es)
			d.Total += len(es)
		}
	}
	return d
}

// Place implements groups.Store.
func (s *Store) Place(ctx context.Context, op queue.Operation) (int, queue.Depth, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, e := range s.st.queues[op.Tenant][op.Project] {
		if e.seq < op.Seq {
			n++
		}
	}
	return n, s.st.depth(op.Tenant), nil
}

// Idempotent implements groups.Store.
func (s *Store) Idempotent(ctx context.Context, scope, key string, now time.Time) (string, string, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.st.idem[scope][key]
	if !ok || !r.Expires.After(now) {
		return "", "", false, nil
	}
	return r.Operation, r.Fingerprint, true, nil
}

// PurgeIdempotency implements groups.Store.
func (s *Store) PurgeIdempotency(ctx context.Context, now time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return prune(s.st.idem, func(r queue.IdempotencyRecord) bool { return !r.Expires.After(now) }), nil
}

// Group implements groups.Store.
func (s *Store) Group(ctx context.Context, name groups.Name) (groups.Group, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.st.groups[name.Tenant][groups.Cursor(name)]
	if !ok {
		return groups.Group{}, groups.ErrNotFound
	}
	return g, nil
}

// Groups implements groups.Store.
func (s *Store) Groups(ctx context.Context, tenant, project string) ([]groups.Group, error) {
	gs, _, err := s.ListGroups(ctx, tenant, groups.PageQuery{Project: project})
	return gs, err
}

// GroupsVersion implements groups.Store.
func (s *Store) GroupsVersion(ctx context.Context, tenant, project string) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.versions[tenant+"\x00"+project], nil
}

// ListGroups implements groups.Store.
func (s *Store) ListGroups(ctx context.Context, tenant string, q groups.PageQuery) ([]groups.Group, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	scope, keep := "", func(string) bool { return true }
	if q.Project != "" {
		scope = q.Project + "\x00" + q.Prefix
	} else if q.Prefix != "" {
		keep = func(k string) bool {
			_, group, _ := strings.Cut(k, "\x00")
			return strings.HasPrefix(group, q.Prefix)
		}
	}
	out := []groups.Group{}
	more := page(s.st.groups[tenant], scope, q.After, q.Limit, keep, func(g groups.Group) { out = append(out, g) })
	return out, more, nil
}

// ListMembers implements groups.Store.
func (s *Store) ListMembers(ctx context.Context, name groups.Name, q groups.PageQuery) ([]groups.User, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.st.groups[name.Tenant][groups.Cursor(name)]; !ok {
		return nil, false, fmt.Errorf("list members of %s: %w", name, groups.ErrNotFound)
	}
	out := []groups.User{}
	more := page(s.st.members[memberKey(name)], q.Prefix, q.After, q.Limit, func(string) bool { return true }, func(u groups.User) { out = append(out, u) })
	return out, more, nil
}

// page visits, in key order, the entries of m whose key starts with scope,
// sorts after after and passes keep, at most limit of them (0: all), and
// reports whether another such entry follows.
func page[V any](m map[string]V, scope, after string, limit int, keep func(string) bool, visit func(V)) bool {
	n := 0
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if !strings.HasPrefix(k, scope) || (after != "" && k <= after) || !keep(k) {
			continue
		}
		if limit > 0 && n == limit {
			return true
		}
		visit(m[k])
		n++
	}
	return false
}

// KnownUsers implements groups.Store.
func (s *Store) KnownUsers(ctx context.Context, tenant string, ids []string) (map[string]groups.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]groups.User{}
	for _, id := range ids {
		if u, ok := s.st.users[tenant][userIDKey(id)]; ok {
			out[id] = u
		} else if u, ok := s.st.users[tenant][userEmailKey(id)]; ok {
			out[id] = u
		}
	}
	return out, nil
}

// GroupsSyncedAt implements groups.Store.
func (s *Store) GroupsSyncedAt(ctx context.Context, tenant string) (time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.synced[tenant], nil
}

func userIDKey(id string) string       { return "i\x00" + strings.ToLower(id) }
func userEmailKey(email string) string { return "e\x00" + strings.ToLower(email) }
func memberKey(n groups.Name) string   { return n.Tenant + "\x00" + groups.Cursor(n) }

// errReadOnly refuses a write through View.
var errReadOnly = errors.New("memstore: write in a read-only transaction")

// tx is groups.Tx over a state.
type tx struct {
	st       *state
	tenant   string
	readOnly bool
}

var _ groups.Tx = (*tx)(nil)

// own refuses a write through View or of another tenant's records.
func (t *tx) own(tenant string) error {
	if t.readOnly {
		return errReadOnly
	}
	if tenant != t.tenant {
		return fmt.Errorf("memstore: a transaction of tenant %q cannot write records of %q", t.tenant, tenant)
	}
	return nil
}

// Fence implements queue.Tx: an in-memory store has no leases.
func (t *tx) Fence(uint64) error { return nil }

func (t *tx) Operation(id string) (queue.Operation, error) {
	op, ok := t.st.ops[id]
	if !ok {
		return queue.Operation{}, fmt.Errorf("operation %s: %w", id, queue.ErrNotFound)
	}
	return op, nil
}

func (t *tx) PutOperation(op queue.Operation) error {
	if err := t.own(op.Tenant); err != nil {
		return err
	}
	t.st.ops[op.ID] = op
	return nil
}

func (t *tx) Append(op queue.Operation) (queue.Operation, error) {
	if err := t.own(op.Tenant); err != nil {
		return op, err
	}
	t.st.seqs[op.Tenant]++
	op.Seq = t.st.seqs[op.Tenant]
	if t.st.queues[op.Tenant] == nil {
		t.st.queues[op.Tenant] = map[string][]entry{}
	}
	t.st.queues[op.Tenant][op.Project] = append(t.st.queues[op.Tenant][op.Project], entry{seq: op.Seq, id: op.ID})
	t.st.ops[op.ID] = op
	return op, nil
}

func (t *tx) Unqueue(op queue.Operation) (bool, error) {
	if err := t.own(op.Tenant); err != nil {
		return false, err
	}
	es := t.st.queues[op.Tenant][op.Project]
	i := slices.IndexFunc(es, func(e entry) bool { return e.seq == op.Seq })
	if i < 0 {
		return false, nil
	}
	t.st.queues[op.Tenant][op.Project] = slices.Delete(slices.Clone(es), i, i+1)
	return true, nil
}

func (t *tx) Depth() (queue.Depth, error) { return t.st.depth(t.tenant), nil }

func (t *tx) Queued() ([]queue.Operation, error) {
	var out []queue.Operation
	for _, es := range t.st.queues[t.tenant] {
		for _, e := range es {
			out = append(out, t.st.ops[e.id])
		}
	}
	slices.SortFunc(out, func(a, b queue.Operation) int { return cmp.Compare(a.Seq, b.Seq) })
	return out, nil
}

func (t *tx) Idempotency(scope, key string) (queue.IdempotencyRecord, bool, error) {
	r, ok := t.st.idem[scope][key]
	return r, ok, nil
}

func (t *tx) PutIdempotency(ik queue.Idempotency, opID string) error {
	if t.readOnly {
		return errReadOnly
	}
	if t.st.idem[ik.Scope] == nil {
		t.st.idem[ik.Scope] = map[string]queue.IdempotencyRecord{}
	}
	t.st.idem[ik.Scope][ik.Key] = queue.IdempotencyRecord{Operation: opID, Fingerprint: ik.Fingerprint, Expires: ik.Expires}
	return nil
}

func (t *tx) Group(name groups.Name) (groups.Group, error) {
	if name.Tenant != t.tenant {
		return groups.Group{}, groups.ErrNotFound
	}
	g, ok := t.st.groups[name.Tenant][groups.Cursor(name)]
	if !ok {
		return groups.Group{}, groups.ErrNotFound
	}
	return g, nil
}

func (t *tx) PutGroup(g groups.Group) error {
	if err := t.own(g.Name.Tenant); err != nil {
		return err
	}
	if t.st.groups[t.tenant] == nil {
		t.st.groups[t.tenant] = map[string]groups.Group{}
	}
	t.st.groups[t.tenant][groups.Cursor(g.Name)] = g
	t.st.versions[t.tenant+"\x00"+g.Name.Project]++
	return nil
}

func (t *tx) DeleteGroup(name groups.Name) error {
	if err := t.own(name.Tenant); err != nil {
		return err
	}
	if _, ok := t.st.groups[t.tenant][groups.Cursor(name)]; !ok {
		return nil
	}
	delete(t.st.groups[t.tenant], groups.Cursor(name))
	delete(t.st.members, memberKey(name))
	t.st.versions[t.tenant+"\x00"+name.Project]++
	return nil
}

func (t *tx) CountGroups(project string) (int, error) {
	n := 0
	for k := range t.st.groups[t.tenant] {
		if project == "" || strings.HasPrefix(k, project+"\x00") {
			n++
		}
	}
	return n, nil
}

func (t *tx) NextRevision(after uint64) (uint64, error) {
	if t.readOnly {
		return 0, errReadOnly
	}
	rev := max(t.st.revs[t.tenant]+1, after+1)
	t.st.revs[t.tenant] = rev
	return rev, nil
}

func (t *tx) Members(name groups.Name) ([]groups.User, error) {
	m := t.st.members[memberKey(name)]
	out := make([]groups.User, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, m[k])
	}
	return out, nil
}

func (t *tx) PutMember(name groups.Name, u groups.User) error {
	if err := t.own(name.Tenant); err != nil {
		return err
	}
	if t.st.members[memberKey(name)] == nil {
		t.st.members[memberKey(name)] = map[string]groups.User{}
	}
	t.st.members[memberKey(name)][groups.MemberCursor(u)] = u
	return nil
}

func (t *tx) RemoveMember(name groups.Name, u groups.User) error {
	if err := t.own(name.Tenant); err != nil {
		return err
	}
	delete(t.st.members[memberKey(name)], groups.MemberCursor(u))
	return nil
}

func (t *tx) DropMembers(name groups.Name) error {
	if err := t.own(name.Tenant); err != nil {
		return err
	}
	delete(t.st.members, memberKey(name))
	return nil
}

func (t *tx) PutKnownUsers(users []groups.User) error {
	if t.readOnly {
		return errReadOnly
	}
	if len(users) == 0 {
		return nil
	}
	if t.st.users[t.tenant] == nil {
		t.st.users[t.tenant] = map[string]groups.User{}
	}
	known := t.st.users[t.tenant]
	for _, u := range users {
		if u.ID == "" {
			continue
		}
		if old, ok := known[userIDKey(u.ID)]; ok && old.Email != "" && !strings.EqualFold(old.Email, u.Email) {
			delete(known, userEmailKey(old.Email))
		}
		known[userIDKey(u.ID)] = u
		if u.Email != "" {
			known[userEmailKey(u.Email)] = u
		}
	}
	return nil
}

func (t *tx) KnownUser(idOrEmail string) (groups.User, bool, error) {
	known := t.st.users[t.tenant]
	if u, ok := known[userIDKey(idOrEmail)]; ok {
		return u, true, nil
	}
	u, ok := known[userEmailKey(idOrEmail)]
	return u, ok, nil
}

func (t *tx) ForgetKnownUser(idOrEmail string) error {
	if t.readOnly {
		return errReadOnly
	}
	delete(t.st.users[t.tenant], userIDKey(idOrEmail))
	delete(t.st.users[t.tenant], userEmailKey(idOrEmail))
	return nil
}

func (t *tx) DeletedUsers(ids []string) (map[string]groups.DeletedUser, error) {
	out := map[string]groups.DeletedUser{}
	for _, id := range ids {
		if d, ok := t.st.deleted[t.tenant][strings.ToLower(id)]; ok {
			out[id] = d
		}
	}
	return out, nil
}

func (t *tx) PutDeletedUser(idOrEmail string, d groups.DeletedUser) error {
	if t.readOnly {
		return errReadOnly
	}
	if t.st.deleted[t.tenant] == nil {
		t.st.deleted[t.tenant] = map[string]groups.DeletedUser{}
	}
	t.st.deleted[t.tenant][strings.ToLower(idOrEmail)] = d
	return nil
}

func (t *tx) DeleteDeletedUsers(ids ...string) error {
	if t.readOnly {
		return errReadOnly
	}
	for _, id := range ids {
		delete(t.st.deleted[t.tenant], strings.ToLower(id))
	}
	return nil
}

func (t *tx) Delivery(digest [32]byte) (webhooks.Record, bool, error) {
	r, ok := t.st.deliveries[t.tenant][digest]
	if ok && r.Pending != nil {
		p := *r.Pending
		p.Left = slices.Clone(p.Left)
		r.Pending = &p
	}
	return r, ok, nil
}

func (t *tx) PutDelivery(digest [32]byte, r webhooks.Record) error {
	if t.readOnly {
		return errReadOnly
	}
	if r.Pending != nil {
		p := *r.Pending
		p.Left, p.Resumed = slices.Clone(p.Left), false
		r.Pending = &p
	}
	if t.st.deliveries[t.tenant] == nil {
		t.st.deliveries[t.tenant] = map[[32]byte]webhooks.Record{}
	}
	t.st.deliveries[t.tenant][digest] = r
	return nil
}

func (t *tx) Groups(project string) ([]groups.Group, error) {
	var out []groups.Group
	for _, k := range slices.Sorted(maps.Keys(t.st.groups[t.tenant])) {
		if project == "" || strings.HasPrefix(k, project+"\x00") {
			out = append(out, t.st.groups[t.tenant][k])
		}
	}
	return out, nil
}

func (t *tx) Owners(name groups.Name) (groups.Owners, bool, error) {
	o, ok := t.st.owners[name.Tenant][groups.Cursor(name)]
	if !ok || name.Tenant != t.tenant {
		return groups.Owners{}, false, nil
	}
	o.Users = slices.Clone(o.Users)
	return o, true, nil
}

func (t *tx) PutOwners(name groups.Name, o groups.Owners) error {
	if err := t.own(name.Tenant); err != nil {
		return err
	}
	if t.st.owners[t.tenant] == nil {
		t.st.owners[t.tenant] = map[string]groups.Owners{}
	}
	o.Users = slices.Clone(o.Users)
	t.st.owners[t.tenant][groups.Cursor(name)] = o
	return nil
}

func (t *tx) SetGroupsSyncedAt(at time.Time) error {
	if t.readOnly {
		return errReadOnly
	}
	t.st.synced[t.tenant] = at
	return nil
}
