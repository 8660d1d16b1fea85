package groups

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/groupgate/groupgate/dispatch"
	"github.com/groupgate/groupgate/queue"
	"github.com/groupgate/groupgate/techpass"
)

// membersProgress is what a group.members operation has done so far.
type membersProgress struct {
	// Users maps identifiers to the users they were resolved to.
	Users map[string]User `json:"users,omitempty"`
	// Unknown are identifiers TechPass does not know.
	Unknown []string `json:"unknown,omitempty"`
	// Done counts the changes applied or skipped, adds first, then removes.
	Done      int          `json:"done"`
	Added     []UserResult `json:"added,omitempty"`
	Removed   []UserResult `json:"removed,omitempty"`
	Unchanged []string     `json:"unchanged,omitempty"`
}

// members carries out one step of a group.members operation: at most one
// upstream request. First every identifier is resolved to a user (from the
// mirror, or by a TechPass lookup per step); if any is unknown the
// operation fails before changing anything. Then each add and remove is
// applied in turn, skipping those the mirror already shows done. Each step's
// progress and mirror change are committed before the next, so a replay
// after a crash repeats at most one request, whose "already a member" or
// "not a member" answer counts as success.
func (e *Executor) members(ctx context.Context, op queue.Operation, name Name, p membersPayload) Outcome {
	var pr membersProgress
	if len(op.Progress) > 0 {
		if err := json.Unmarshal(op.Progress, &pr); err != nil {
			return fail(http.StatusInternalServerError, "Corrupt operation", "the stored progress could not be read")
		}
	}
	if pr.Users == nil {
		pr.Users = map[string]User{}
	}
	g, out := e.upstreamGroup(ctx, name, nil)
	if out != nil {
		return *out
	}
	if pr.Done < len(p.Add) {
		if out := e.refuseDeleted(ctx, name, objectIDs(p.Add[pr.Done:]), pr); out != nil {
			return *out
		}
	}
	if out := e.resolve(ctx, name, p, &pr); out != nil {
		return *out
	}
	if len(pr.Unknown) > 0 {
		if out := e.refuseDeleted(ctx, name, pr.Unknown, pr); out != nil {
			return *out // unknown because TechPass deleted them: say so
		}
		return Outcome{Kind: dispatch.Fail, Failure: &queue.Failure{
			Status: http.StatusUnprocessableEntity, Title: "Unknown user",
			Detail: fmt.Sprintf("TechPass knows no user %s; no member of %s was changed", quoteList(pr.Unknown), name),
		}}
	}
	if pr.Done < len(p.Add) {
		// An e-mail may resolve (from the mirror or a lookup) to an id
		// TechPass reported deleted: refuse it as the id itself is.
		var resolved []string
		for _, id := range p.Add[pr.Done:] {
			if u, ok := pr.Users[id]; ok && u.ID != "" && u.ID != id {
				resolved = append(resolved, u.ID)
			}
		}
		if out := e.refuseDeleted(ctx, name, resolved, pr); out != nil {
			return *out
		}
	}
	ids, err := memberIDs(ctx, e.mirror, name)
	if err != nil {
		return Outcome{Kind: dispatch.Retry, Reason: "the group mirror could not be read"}
	}
	known := !g.MembersSyncedAt.IsZero()
	work := append(slices.Clone(p.Add), p.Remove...)
	for pr.Done < len(work) {
		id := work[pr.Done]
		u := pr.Users[id]
		adding := pr.Done < len(p.Add)
		if (known && ids[u.ID] == adding) || pr.handled(u.ID) {
			// The mirror shows it done already, or this change did it for
			// another identifier of the same user: no request.
			pr.Unchanged = append(pr.Unchanged, id)
			pr.Done++
			continue
		}
		if adding {
			return e.addMember(ctx, name, g.UpstreamID, u, p, pr)
		}
		return e.removeMember(ctx, name, g.UpstreamID, u, p, pr)
	}
	return e.membersDone(name, p, pr)
}

// refuseDeleted fails the change if one of ids, users it has to add, was
// reported deleted by TechPass (a webhook). Object ids are never reused, so
// an add by a deleted user's id fails before any request; an e-mail may be
// given to a new user, so an add by e-mail is looked up first and only
// fails here once TechPass does not know it.
func (e *Executor) refuseDeleted(ctx context.Context, name Name, ids []string, pr membersProgress) *Outcome {
	if len(ids) == 0 {
		return nil
	}
	gone, err := e.mirror.DeletedUsers(ctx, name.Tenant, ids)
	if err != nil {
		return &Outcome{Kind: dispatch.Retry, Reason: "the user mirror could not be read"}
	}
	var deleted []string
	var at time.Time
	for _, id := range ids {
		if d, ok := gone[id]; ok {
			deleted = append(deleted, id)
			at = d.DeletedAt
		}
	}
	if len(deleted) == 0 {
		return nil
	}
	detail := fmt.Sprintf("TechPass reported user %s deleted (webhook of %s), so it cannot be added to %s", quoteList(deleted), at.UTC().Format(time.RFC3339), name) + partial(pr)
	return &Outcome{Kind: dispatch.Fail, Failure: &queue.Failure{
		Status: http.StatusUnprocessableEntity, Title: "User deleted", Detail: detail,
	}}
}

// objectIDs returns the identifiers that are object ids (not e-mails).
func objectIDs(ids []string) []string {
	var out []string
	for _, id := range ids {
		if !strings.Contains(id, "@") {
			out = append(out, id)
		}
	}
	return out
}

// handled reports whether the change already added or removed the user
// with this id (named twice, by e-mail and by id).
func (pr membersProgress) handled(id string) bool {
	has := func(us []UserResult) bool {
		return slices.ContainsFunc(us, func(u UserResult) bool { return u.ID == id })
	}
	return has(pr.Added) || has(pr.Removed)
}

// resolve finds the user of every identifier of the change, from the
// mirror or, for the first one it does not know, from TechPass. A non-nil
// outcome is the step to report.
func (e *Executor) resolve(ctx context.Context, name Name, p membersPayload, pr *membersProgress) *Outcome {
	var missing []string
	for _, id := range append(slices.Clone(p.Add), p.Remove...) {
		if _, ok := pr.Users[id]; !ok && !slices.Contains(pr.Unknown, id) {
			missing = append(missing, id)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	known, err := e.mirror.KnownUsers(ctx, name.Tenant, missing)
	if err != nil {
		return &Outcome{Kind: dispatch.Retry, Reason: "the user mirror could not be read"}
	}
	var lookup string
	for _, id := range missing {
		if u, ok := known[id]; ok {
			pr.Users[id] = u
		} else if lookup == "" {
			lookup = id
		}
	}
	if lookup == "" {
		return nil
	}
	tu, err := e.upstream.GetUser(ctx, lookup)
	switch status := techpass.StatusOf(err); {
	case err == nil:
		u := User{ID: strings.ToLower(tu.ID), Email: tu.Email, DisplayName: tu.DisplayName}
		pr.Users[lookup] = u
		out := step(*pr, UsersResolved{Tenant: name.Tenant, Users: []User{u}})
		return &out
	case status == http.StatusNotFound:
		pr.Unknown = append(pr.Unknown, lookup)
		out := step(*pr)
		return &out
	default:
		out := e.classify(err, "look up user "+lookup)
		return &out
	}
}

func (e *Executor) addMember(ctx context.Context, name Name, groupID string, u User, p membersPayload, pr membersProgress) Outcome {
	err := e.upstream.AddMember(ctx, groupID, u.ID)
	switch status := techpass.StatusOf(err); {
	case err == nil, status == http.StatusConflict:
		// 409: already a member, as a replay finds it.
		pr.Added = append(pr.Added, userResult(u))
		pr.Done++
		return e.next(name, p, pr, MembersAdded{Name: name, Users: []User{u}, At: e.now()})
	case status == http.StatusForbidden:
		return e.dynamic(err, name, "added to", pr)
	case status == http.StatusNotFound:
		return Outcome{Kind: dispatch.Fail, Failure: &queue.Failure{
			Status: http.StatusNotFound, Title: "Not found in TechPass",
			Detail: reason(err, fmt.Sprintf("TechPass could not add %s to %s: the group or the user is gone", u.Email, name)) + partial(pr),
		}}
	default:
		return withPartial(e.classify(err, "add "+u.Email+" to the group"), pr)
	}
}

func (e *Executor) removeMember(ctx context.Context, name Name, groupID string, u User, p membersPayload, pr membersProgress) Outcome {
	err := e.upstream.RemoveMember(ctx, groupID, u.ID)
	switch status := techpass.StatusOf(err); {
	case err == nil, status == http.StatusNotFound:
		// 404: not a member (or no group), as a replay finds it.
		pr.Removed = append(pr.Removed, userResult(u))
		pr.Done++
		return e.next(name, p, pr, MembersRemoved{Name: name, UserIDs: []string{u.ID}, At: e.now()})
	case status == http.StatusForbidden:
		return e.dynamic(err, name, "removed from", pr)
	default:
		return withPartial(e.classify(err, "remove "+u.Email+" from the group"), pr)
	}
}

// dynamic is the outcome of a member change TechPass refuses (403): the
// group's members are set by a rule (a dynamic group), or TechBiz manages
// the group. TechPass's message and trace id say which.
func (e *Executor) dynamic(err error, name Name, what string, pr membersProgress) Outcome {
	detail := "TechPass answered HTTP 403"
	var ae *techpass.Error
	if errors.As(err, &ae) {
		detail += upstreamDetail(ae)
	}
	return Outcome{Kind: dispatch.Fail, Failure: &queue.Failure{
		Status: http.StatusConflict, Title: "Members not changeable through the API",
		Detail: fmt.Sprintf("%s is a dynamic group (TechPass sets its members by a rule) or one TechBiz manages, "+
			"so members cannot be %s it through the API (%s)", name, what, detail) + partial(pr),
	}}
}

// withPartial adds to a failure what the change had done before it.
func withPartial(out Outcome, pr membersProgress) Outcome {
	if out.Kind == dispatch.Fail && out.Failure != nil {
		out.Failure.Detail += partial(pr)
	}
	return out
}

// step reports a step done with more to come (or, if nothing remains, the
// next Execute finishes without a request).
func step(pr membersProgress, effects ...Effect) Outcome {
	b, err := json.Marshal(pr)
	if err != nil {
		return fail(http.StatusInternalServerError, "Internal error", "the operation's progress could not be stored")
	}
	return Outcome{Kind: dispatch.Continue, Progress: b, Effects: effects}
}

// next reports a change applied: the operation is done if it was the
// last one (sparing a turn of the queue that would make no request),
// otherwise one step is.
func (e *Executor) next(name Name, p membersPayload, pr membersProgress, effect Effect) Outcome {
	if pr.Done < len(p.Add)+len(p.Remove) {
		return step(pr, effect)
	}
	out := e.membersDone(name, p, pr)
	if out.Kind == dispatch.Done {
		out.Effects = append(out.Effects, effect)
	}
	return out
}

func (e *Executor) membersDone(name Name, p membersPayload, pr membersProgress) Outcome {
	res := MembersResult{FullName: name.String(), Added: pr.Added, Removed: pr.Removed, Unchanged: append(slices.Clone(p.Unchanged), pr.Unchanged...)}
	if res.Added == nil {
		res.Added = []UserResult{}
	}
	if res.Removed == nil {
		res.Removed = []UserResult{}
	}
	if res.Unchanged == nil {
		res.Unchanged = []string{}
	}
	b, err := json.Marshal(res)
	if err != nil {
		return fail(http.StatusInternalServerError, "Internal error", "the result could not be stored")
	}
	return done(b)
}

// partial words what a failed member change had already done.
func partial(pr membersProgress) string {
	if len(pr.Added)+len(pr.Removed) == 0 {
		return "; no member was changed"
	}
	names := func(us []UserResult) string {
		out := make([]string, len(us))
		for i, u := range us {
			out[i] = u.Email
		}
		return strings.Join(out, ", ")
	}
	var done []string
	if len(pr.Added) > 0 {
		done = append(done, "added "+names(pr.Added))
	}
	if len(pr.Removed) > 0 {
		done = append(done, "removed "+names(pr.Removed))
	}
	return "; before that it " + strings.Join(done, " and ")
}

func userResult(u User) UserResult {
	return UserResult{ID: u.ID, Email: u.Email, DisplayName: u.DisplayName}
}

// quoteList words identifiers for a message: "a", "a and b", "a, b and c".
func quoteList(ids []string) string {
	q := make([]string, len(ids))
	for i, id := range ids {
		q[i] = fmt.Sprintf("%q", id)
	}
	if len(q) == 1 {
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " and " + q[len(q)-1]
}
