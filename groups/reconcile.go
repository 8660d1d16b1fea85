package groups

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-playground/validator/v10"

	"github.com/groupgate/groupgate/dispatch"
	"github.com/groupgate/groupgate/techpass"
)

// Drift is one difference between the mirror and TechPass that a reconcile
// pass found and applied: a change made outside the service, for example in
// the TechPass portal.
type Drift struct {
	// Kind is "group.appeared", "group.vanished", "group.changed",
	// "member.appeared" or "member.vanished".
	Kind string
	// Group is the group concerned.
	Group Name
	// User is the member concerned, for a member drift.
	User User
}

// ReconcilerConfig holds what a Reconciler needs. Tenant, Upstream and
// Store are required.
type ReconcilerConfig struct {
	Tenant   string
	Upstream Upstream
	Store    Store
	// Every is how often a pass starts; 0 means only when requested.
	Every time.Duration
	// KnownProject reports whether project is one of the tenant's; groups
	// of other projects (or not named <TENANT>:<PROJECT>:<group>) are not
	// mirrored. Nil accepts every project.
	KnownProject func(ctx context.Context, project string) (bool, error)
	// OnDrift, if set, is told of every drift applied, for the audit log.
	OnDrift func(ctx context.Context, d Drift)
	// OnPass, if set, is told when a pass ends.
	OnPass func(Pass)
	Now    func() time.Time
	// Logger should carry the tenant already.
	Logger *slog.Logger
}

// Pass describes a reconcile pass.
type Pass struct {
	Started  time.Time
	Finished time.Time
	// Groups is how many groups' member lists were read.
	Groups int
	// Drift counts the differences found and applied.
	Drift int
	// Skipped counts groups left for the next pass (changed while read,
	// or unreadable).
	Skipped int
	// Requests counts the upstream requests the pass made.
	Requests int
}

// Status is what a Reconciler says of itself.
type Status struct {
	// Running is true while a pass is under way.
	Running bool
	// Current is the pass under way, if any.
	Current Pass
	// Last is the last finished pass; zero if none.
	Last Pass
	// Passes counts finished passes.
	Passes int
	// Next is when the next pass is due; zero if only on request.
	Next time.Time
}

// Reconciler keeps one tenant's mirror in step with TechPass. It is the
// dispatch.Background of the tenant's dispatcher: each Step makes one
// upstream request, in a slot no client operation wants. A pass reads the
// tenant's group list (one request), applies the differences, then reads
// the member list of each mirrored group (one request per page) and applies
// those. Every difference is reported to OnDrift. Safe for concurrent use.
type Reconciler struct {
	cfg      ReconcilerConfig
	ledger   *Ledger
	validate *validator.Validate

	mu        sync.Mutex
	requested bool
	// pass is the pass under way; only Step's goroutine touches its
	// contents, others read current, a copy made after each step.
	pass     *passState
	current  Pass
	last     Pass
	passes   int
	next     time.Time
	failures int
	retryAt  time.Time
}

// passState is a pass under way.
type passState struct {
	Pass
	listed bool
	// vanished are the mirror's groups missing from TechPass's list, to
	// settle in the next step: gone, or now managed by TechBiz (which the
	// default list leaves out).
	vanished []GroupChange
	// todo holds the groups whose members are still to read.
	todo []Group
	// cursor, users and version belong to the member list being read
	// (todo[0]) across its pages.
	cursor  string
	users   []User
	version uint64
	reading bool
	// seen are the ids read so far and cursors the cursors followed, so
	// a page that repeats or a cursor that cycles ends the reading; pages
	// counts the pages read.
	seen    map[string]bool
	cursors map[string]bool
	pages   int
	// owners are the group's owners, when the member list comes through
	// Get Group (ownersKnown).
	owners      []User
	ownersKnown bool
}

var _ dispatch.Background = (*Reconciler)(nil)

// NewReconciler returns a reconciler; its first pass is due at once when
// Every is set.
func NewReconciler(cfg ReconcilerConfig) *Reconciler {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Reconciler{cfg: cfg, ledger: NewLedger(cfg.Store), validate: NewValidator()}
	if cfg.Every > 0 {
		r.next = cfg.Now()
	}
	return r
}

var _ dispatch.FencedBackground = (*Reconciler)(nil)

// Fence implements dispatch.FencedBackground: from now on the mirror's
// writes are fenced by epoch (see Ledger.Fenced), so a deposed leader's
// pass changes nothing. The tenant's dispatcher calls it when it starts
// leading.
func (r *Reconciler) Fence(epoch uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ledger = NewLedger(r.cfg.Store).FencedLedger(epoch)
}

// writer is the ledger the pass writes through.
func (r *Reconciler) writer() *Ledger {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ledger
}

// Request asks for a pass as soon as a slot is free (no effect while one is
// under way). The caller wakes the tenant's dispatcher.
func (r *Reconciler) Request() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pass == nil {
		r.requested = true
	}
}

// Status reports the reconciler's passes.
func (r *Reconciler) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := Status{Last: r.last, Passes: r.passes, Next: r.next}
	if r.pass != nil {
		st.Running, st.Current = true, r.current
	}
	return st
}

// maxFailures is how many failed steps in a row end a pass early.
const maxFailures = 5

// Due implements dispatch.Background.
func (r *Reconciler) Due(now time.Time) (bool, time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.Before(r.retryAt) {
		return false, r.retryAt
	}
	if r.pass != nil || r.requested {
		return true, time.Time{}
	}
	if !r.next.IsZero() {
		return !now.Before(r.next), r.next
	}
	return false, time.Time{}
}

// Step implements dispatch.Background: it makes at most one upstream
// request and applies what it read.
func (r *Reconciler) Step(ctx context.Context) {
	r.mu.Lock()
	if r.pass == nil {
		r.pass = &passState{Pass: Pass{Started: r.cfg.Now()}}
		r.current, r.requested = r.pass.Pass, false
	}
	p := r.pass
	r.mu.Unlock()

	var err error
	switch {
	case !p.listed:
		err = r.listGroups(ctx, p)
	case len(p.vanished) > 0:
		err = r.settleVanished(ctx, p)
	default:
		err = r.readMembers(ctx, p)
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	r.current = p.Pass
	now := r.cfg.Now()
	if err != nil {
		r.failures++
		wait := dispatch.RetryPolicy{BaseDelay: time.Second, MaxDelay: time.Minute}.Backoff(r.failures)
		if after, ok := retryAfterOf(err); ok && after > wait {
			wait = after
		}
		r.retryAt = now.Add(wait)
		r.cfg.Logger.Warn("reconcile step failed", "err", err, "failures", r.failures)
		if r.failures < maxFailures {
			return
		}
		r.cfg.Logger.Error("reconcile pass abandoned after repeated failures")
	} else {
		r.failures, r.retryAt = 0, time.Time{}
		if !p.listed || len(p.vanished) > 0 || len(p.todo) > 0 {
			return
		}
	}
	p.Finished = now
	r.last, r.pass, r.failures = p.Pass, nil, 0
	r.passes++
	if r.cfg.Every > 0 {
		r.next = p.Started.Add(r.cfg.Every)
	}
	r.cfg.Logger.Info("reconcile pass finished", "groups", p.Groups, "drift", p.Drift, "skipped", p.Skipped,
		"requests", p.Requests, "took", p.Finished.Sub(p.Started))
	if r.cfg.OnPass != nil {
		r.cfg.OnPass(p.Pass)
	}
}

// retryAfterOf returns the wait TechPass asked for, if any.
func retryAfterOf(err error) (time.Duration, bool) {
	_, after, _ := techpass.Temporary(err)
	return after, after > 0
}

// listGroups reads the namespace's groups, applies the differences with the
// mirror, and plans the member reads.
func (r *Reconciler) listGroups(ctx context.Context, p *passState) error {
	p.Requests++
	upstream, err := r.cfg.Upstream.ListGroups(ctx)
	if err != nil {
		return err
	}
	now := r.cfg.Now()
	mirror, _, err := r.cfg.Store.ListGroups(ctx, r.cfg.Tenant, PageQuery{})
	if err != nil {
		return err
	}
	byKey := make(map[string]Group, len(mirror))
	for _, g := range mirror {
		byKey[Cursor(g.Name)] = g
	}
	var changes []GroupChange
	var seen []Name
	found := map[string]bool{}
	for _, u := range upstream {
		n, ok, err := r.ours(ctx, u.Name)
		if err != nil {
			return err // not knowing the projects must not make groups vanish
		}
		if !ok {
			continue
		}
		key := Cursor(n)
		found[key] = true
		g, inMirror := byKey[key]
		switch {
		case !inMirror:
			changes = append(changes, GroupChange{Kind: GroupAppeared, Group: Group{
				Name: n, Description: u.Description, State: Active, UpstreamID: u.ID, SyncedAt: now, CreatedAt: created(u, now), UpdatedAt: now,
			}})
		case g.State != Active:
			// A create or delete is queued or running: its outcome decides.
		case !strings.EqualFold(g.UpstreamID, u.ID):
			// Deleted and made again outside the gateway: a new group.
			replaced := g
			replaced.UpstreamID, replaced.Description = u.ID, u.Description
			changes = append(changes, GroupChange{Kind: GroupReplaced, Group: replaced, Previous: g.Description})
		default:
			seen = append(seen, g.Name)
			if g.PendingUpdate == "" && g.Description != u.Description {
				changed := g
				changed.Description = u.Description
				changes = append(changes, GroupChange{Kind: GroupChanged, Group: changed, Previous: g.Description})
			}
		}
	}
	p.vanished = nil
	for _, g := range mirror {
		if g.State == Active && !found[Cursor(g.Name)] {
			p.vanished = append(p.vanished, GroupChange{Kind: GroupVanished, Group: g})
		}
	}
	applied, err := r.writer().SyncGroups(ctx, r.cfg.Tenant, changes, seen, now)
	if err != nil {
		return err
	}
	for _, c := range applied {
		p.Drift++
		r.drift(ctx, Drift{Kind: "group." + string(c.Kind), Group: c.Group.Name})
	}
	// Read the members of every group now active, in name order.
	after, _, err := r.cfg.Store.ListGroups(ctx, r.cfg.Tenant, PageQuery{})
	if err != nil {
		return err
	}
	p.todo = slices.DeleteFunc(after, func(g Group) bool { return g.State != Active || g.UpstreamID == "" })
	p.listed = true
	return nil
}

// settleVanished lists the namespace's groups with those TechBiz manages
// (one request) and drops the vanished groups from the mirror: a group
// really gone is drift; one TechBiz now manages is no longer the gateway's
// to manage, and is not counted as drift.
func (r *Reconciler) settleVanished(ctx context.Context, p *passState) error {
	p.Requests++
	all, err := r.cfg.Upstream.ListGroupsWithTechBiz(ctx)
	if status := techpass.StatusOf(err); err != nil && status >= 400 && status < 500 && status != http.StatusTooManyRequests && status != http.StatusUnauthorized {
		// TechPass refuses the TechBiz list (the parameter not understood,
		// say): every pass would stop here. Settle without it: a group
		// taken over by TechBiz then counts as deleted.
		r.cfg.Logger.Warn("TechBiz-managed groups could not be listed; vanished groups are taken as deleted", "status", status, "err", err)
		all, err = nil, nil
	}
	if err != nil {
		return err
	}
	techBiz := map[string]bool{}
	for _, u := range all {
		if n, err := ParseFullName(r.validate, u.Name); err == nil && strings.EqualFold(n.Tenant, r.cfg.Tenant) {
			n.Tenant = r.cfg.Tenant
			techBiz[Cursor(n)] = true
		}
	}
	applied, err := r.writer().SyncGroups(ctx, r.cfg.Tenant, p.vanished, nil, r.cfg.Now())
	if err != nil {
		return err
	}
	gone := map[string]bool{}
	for _, c := range p.vanished {
		gone[Cursor(c.Group.Name)] = true
	}
	for _, c := range applied {
		if techBiz[Cursor(c.Group.Name)] {
			r.cfg.Logger.Warn("group now managed by TechBiz: no longer mirrored or managed by the gateway", "group", c.Group.Name.String())
			continue
		}
		p.Drift++
		r.drift(ctx, Drift{Kind: "group." + string(c.Kind), Group: c.Group.Name})
	}
	p.todo = slices.DeleteFunc(p.todo, func(g Group) bool { return gone[Cursor(g.Name)] })
	p.vanished = nil
	return nil
}

// ours parses an upstream group name as one of the tenant's project groups.
func (r *Reconciler) ours(ctx context.Context, full string) (Name, bool, error) {
	n, err := ParseFullName(r.validate, full)
	if err != nil || !strings.EqualFold(n.Tenant, r.cfg.Tenant) {
		return Name{}, false, nil
	}
	n.Tenant = r.cfg.Tenant
	if r.cfg.KnownProject != nil {
		known, err := r.cfg.KnownProject(ctx, n.Project)
		if err != nil || !known {
			return Name{}, false, err
		}
	}
	return n, true, nil
}

func created(g techpass.Group, fallback time.Time) time.Time {
	if g.Created.IsZero() {
		return fallback
	}
	return g.Created.UTC()
}

// readMembers reads one page of the next group's members; after the last
// page it applies the differences with the mirror.
func (r *Reconciler) readMembers(ctx context.Context, p *passState) error {
	g := p.todo[0]
	if !p.reading {
		// The member list must not change between the first page and the
		// commit; the version tells.
		cur, err := r.cfg.Store.Group(ctx, g.Name)
		// A member change queued or running (perhaps waiting to retry a
		// request TechPass may have applied) would look like drift.
		if errors.Is(err, ErrNotFound) || (err == nil && (cur.State != Active || cur.UpstreamID != g.UpstreamID || cur.PendingMembers > 0)) {
			p.skip()
			return nil
		}
		if err != nil {
			return err
		}
		p.version, p.cursor, p.users, p.reading = cur.MembersVersion, "", nil, true
		p.seen, p.cursors, p.pages = nil, nil, 0
	}
	p.Requests++
	page, err := r.cfg.Upstream.ListMembers(ctx, g.UpstreamID, p.cursor)
	if techpass.StatusOf(err) == http.StatusNotFound {
		// Gone upstream: the next pass's group list notices.
		p.skip()
		return nil
	}
	if err != nil {
		return err
	}
	if p.seen == nil {
		p.seen, p.cursors = map[string]bool{}, map[string]bool{}
	}
	p.pages++
	fresh := 0
	for _, m := range page.Members {
		id := strings.ToLower(m.ID)
		if p.seen[id] {
			continue // a member listed twice (a page repeated, paging ignored)
		}
		p.seen[id] = true
		fresh++
		p.users = append(p.users, User{ID: id, Email: m.Email, DisplayName: m.Name()})
	}
	if page.OwnersKnown && !p.ownersKnown {
		p.ownersKnown = true
		for _, o := range page.Owners {
			p.owners = append(p.owners, User{ID: strings.ToLower(o.ID), Email: o.Email, DisplayName: o.Name()})
		}
	}
	if page.Next != "" && p.pages > 1 && fresh == 0 {
		// A page with nothing new: TechPass ignores the paging parameters
		// (the same page again) or the list ended on a full page; what was
		// read is the whole list.
		page.Next = ""
	}
	if page.Next != "" {
		if p.cursors[page.Next] || page.Next == p.cursor || len(p.users) > maxMembersRead || p.pages >= maxMemberPages {
			// A cursor seen before (a cycle), a list past any sane size,
			// or too many pages: leave the group for the next pass rather
			// than loop.
			r.cfg.Logger.Warn("member list of a group not read whole; left for the next pass", "group", g.Name.String(), "pages", p.pages)
			p.skip()
			return nil
		}
		p.cursors[page.Next] = true
		p.cursor = page.Next
		return nil
	}
	if p.ownersKnown {
		// Owners are mirrored read-only, whatever member change is pending,
		// up to maxOwners (the API's bound).
		if len(p.owners) > maxOwners {
			r.cfg.Logger.Warn("group has more owners than are mirrored", "group", g.Name.String(), "owners", len(p.owners), "mirrored", maxOwners)
			p.owners = p.owners[:maxOwners]
		}
		if _, err := r.writer().SyncOwners(ctx, g.Name, g.UpstreamID, p.owners); err != nil {
			return err
		}
	}
	added, removed, ok, err := r.writer().SyncMembers(ctx, g.Name, g.UpstreamID, p.version, p.users, r.cfg.Now())
	if err != nil {
		return err
	}
	if !ok {
		p.skip()
		return nil
	}
	for _, u := range added {
		p.Drift++
		r.drift(ctx, Drift{Kind: "member.appeared", Group: g.Name, User: u})
	}
	for _, u := range removed {
		p.Drift++
		r.drift(ctx, Drift{Kind: "member.vanished", Group: g.Name, User: u})
	}
	p.Groups++
	p.done()
	return nil
}

// maxOwners bounds the owners mirrored of one group.
const maxOwners = 1000

// maxMembersRead bounds the member list one group may have in a pass (and
// so the memory a pass holds); Azure AD groups are far smaller in practice.
const maxMembersRead = 100000

// maxMemberPages bounds the pages read of one group's members in a pass:
// with the pacer's spacing, more would hold the pass for hours.
const maxMemberPages = 1000

// skip leaves the current group for the next pass.
func (p *passState) skip() {
	p.Skipped++
	p.done()
}

// done moves on to the next group.
func (p *passState) done() {
	p.todo = p.todo[1:]
	p.reading, p.cursor, p.users = false, "", nil
	p.seen, p.cursors, p.pages = nil, nil, 0
	p.owners, p.ownersKnown = nil, false
}

func (r *Reconciler) drift(ctx context.Context, d Drift) {
	r.cfg.Logger.Info("drift from TechPass applied to the mirror", "kind", d.Kind, "group", d.Group.String())
	if r.cfg.OnDrift != nil {
		r.cfg.OnDrift(ctx, d)
	}
}
