package groups

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/groupgate/groupgate/dispatch"
	"github.com/groupgate/groupgate/queue"
	"github.com/groupgate/groupgate/techpass"
)

// create carries out a group.create: one request, or two when an earlier
// attempt may have created the group already or TechPass answers 409.
func (e *Executor) create(ctx context.Context, op queue.Operation, name Name, p createPayload) Outcome {
	// An earlier attempt may have reached TechPass (a crash, a timeout, or a
	// 5xx after the write): look before creating again. The look is a check,
	// not an attempt: a try that ends with it is not counted as an attempt,
	// and its transient failure not as a failure.
	if op.Attempts > 1 {
		existing, found, out, err := e.find(ctx, name)
		if out != nil {
			o := checked(*out, err)
			o.CheckOnly = true
			return o
		}
		if found {
			e.logger.Info("group already exists upstream; adopting it", "operation_id", op.ID, "group", name.String())
			o := e.created(name, p.Description, existing, false)
			o.CheckOnly = true
			return o
		}
	}
	g, err := e.upstream.CreateGroup(ctx, name.String(), p.Description)
	switch status := techpass.StatusOf(err); {
	case err == nil:
		return e.created(name, p.Description, g, true)
	case status == http.StatusConflict:
		existing, found, out, err := e.find(ctx, name)
		if out != nil {
			return checked(*out, err)
		}
		if found {
			return e.created(name, p.Description, existing, false)
		}
		// Not in the list: TechBiz may manage it (TechPass lists those
		// only on request). Such a group is never adopted.
		all, err := e.upstream.ListGroupsWithTechBiz(ctx)
		if err != nil {
			return e.classify(err, "list the namespace's groups", CreateFailed{Name: name})
		}
		if slices.ContainsFunc(all, func(g techpass.Group) bool { return strings.EqualFold(g.Name, name.String()) }) {
			e.logger.Warn("group name taken by a TechBiz-managed group; not adopted", "operation_id", op.ID, "group", name.String())
			return e.failCreate(name, http.StatusConflict, "Group managed by TechBiz", "a group of this name exists in the namespace and is managed by TechBiz; the gateway does not manage or adopt TechBiz groups: choose another name")
		}
		return e.failCreate(name, http.StatusConflict, "Group exists in TechPass", "TechPass reports a group of this name in the namespace, but it is not visible in the namespace's group list")
	case status == http.StatusBadRequest:
		return e.failCreate(name, http.StatusUnprocessableEntity, "Rejected by TechPass", reason(err, "TechPass refused to create the group"))
	case status == http.StatusForbidden:
		return e.failCreate(name, http.StatusBadGateway, "Forbidden by TechPass", "TechPass refused the gateway's credentials for this namespace; the platform team must check them")
	default:
		return e.classify(err, "create the group", CreateFailed{Name: name})
	}
}

// delete carries out a group.delete: one request, and a list first when the
// group's upstream id is not known.
func (e *Executor) delete(ctx context.Context, name Name, p deletePayload) Outcome {
	id := p.UpstreamID
	if id == "" {
		existing, found, out, _ := e.find(ctx, name)
		if out != nil {
			return *out
		}
		if !found {
			return done(nil, Deleted{Name: name})
		}
		id = existing.ID
	}
	err := e.upstream.DeleteGroup(ctx, id)
	switch status := techpass.StatusOf(err); {
	case err == nil, status == http.StatusNotFound:
		return done(nil, Deleted{Name: name})
	case status == http.StatusForbidden:
		return Outcome{Kind: dispatch.Fail, Effects: []Effect{DeleteFailed{Name: name, At: e.now()}},
			Failure: techBizRefusal(err, "delete")}
	case status == http.StatusBadRequest, status == http.StatusConflict:
		return Outcome{Kind: dispatch.Fail, Effects: []Effect{DeleteFailed{Name: name, At: e.now()}},
			Failure: &queue.Failure{Status: http.StatusBadGateway, Title: "Rejected by TechPass", Detail: reason(err, "TechPass refused to delete the group")}}
	default:
		return e.classify(err, "delete the group", DeleteFailed{Name: name, At: e.now()})
	}
}

// techBizRefusal is the failure of a 403 to a change of a group the gateway
// created: the credentials serve the namespace (they created it), so the
// group is most likely managed by TechBiz now, which TechPass protects from
// API changes; the next reconcile pass drops it from the mirror.
func techBizRefusal(err error, what string) *queue.Failure {
	return &queue.Failure{
		Status: http.StatusConflict, Title: "Group managed by TechBiz",
		Detail: reason(err, fmt.Sprintf("TechPass refused to %s the group: it is most likely managed by TechBiz now, "+
			"and TechBiz groups cannot be changed through the API; the gateway's next reconcile pass drops it from the mirror", what)),
	}
}

// find looks for the group by name in the namespace's list. A non-nil
// outcome means the lookup itself failed (with err) and is what to report.
func (e *Executor) find(ctx context.Context, name Name) (techpass.Group, bool, *Outcome, error) {
	list, err := e.upstream.ListGroups(ctx)
	if err != nil {
		out := e.classify(err, "list the namespace's groups")
		return techpass.Group{}, false, &out, err
	}
	for _, g := range list {
		if strings.EqualFold(g.Name, name.String()) {
			return g, true, nil, nil
		}
	}
	return techpass.Group{}, false, nil, nil
}

// created reports a group created (fresh: by this request, so it has no
// members) or adopted (found in TechPass: its members are unknown).
func (e *Executor) created(name Name, description string, g techpass.Group, fresh bool) Outcome {
	created := g.Created
	if created.IsZero() {
		created = e.now()
	}
	res, _ := json.Marshal(Result{FullName: name.String(), Description: description, UpstreamID: g.ID, CreatedAt: created.UTC()})
	return done(res, Created{Name: name, UpstreamID: g.ID, At: e.now(), MembersKnown: fresh, Description: g.Description})
}

func (e *Executor) failCreate(name Name, status int, title, detail string) Outcome {
	return Outcome{Kind: dispatch.Fail, Effects: []Effect{CreateFailed{Name: name}},
		Failure: &queue.Failure{Status: status, Title: title, Detail: detail}}
}

// update carries out a group.update: one upstream request.
func (e *Executor) update(ctx context.Context, op queue.Operation, name Name, p updatePayload) Outcome {
	undo := Undo(op, e.now())
	g, out := e.upstreamGroup(ctx, name, undo)
	if out != nil {
		return *out
	}
	up, err := e.upstream.UpdateGroup(ctx, g.UpstreamID, p.Description)
	switch status := techpass.StatusOf(err); {
	case err == nil:
		created := up.Created
		if created.IsZero() {
			created = g.CreatedAt
		}
		res, _ := json.Marshal(Result{FullName: name.String(), Description: p.Description, UpstreamID: g.UpstreamID, CreatedAt: created.UTC()})
		return done(res, Updated{Name: name, Operation: op.ID, Description: p.Description, At: e.now()})
	case status == http.StatusNotFound:
		return Outcome{Kind: dispatch.Fail, Effects: undo, Failure: &queue.Failure{
			Status: http.StatusNotFound, Title: "Group gone from TechPass", Detail: "the group is no longer in TechPass; the mirror drops it at its next reconcile pass",
		}}
	case status == http.StatusForbidden:
		return Outcome{Kind: dispatch.Fail, Effects: undo, Failure: techBizRefusal(err, "update")}
	case status == http.StatusBadRequest:
		return Outcome{Kind: dispatch.Fail, Effects: undo, Failure: &queue.Failure{
			Status: http.StatusBadGateway, Title: "Rejected by TechPass", Detail: reason(err, "TechPass refused to update the group"),
		}}
	default:
		return e.classify(err, "update the group", undo...)
	}
}

// upstreamGroup returns the group from the mirror with its upstream id, or
// the outcome to report when there is none.
func (e *Executor) upstreamGroup(ctx context.Context, name Name, onFail []Effect) (Group, *Outcome) {
	g, err := e.mirror.Group(ctx, name)
	switch {
	case errors.Is(err, ErrNotFound):
		out := Outcome{Kind: dispatch.Fail, Effects: onFail, Failure: &queue.Failure{
			Status: http.StatusNotFound, Title: "Group not found", Detail: fmt.Sprintf("group %s no longer exists", name),
		}}
		return Group{}, &out
	case err != nil:
		// The store is local; a failure to read it is worth another try.
		return Group{}, &Outcome{Kind: dispatch.Retry, Reason: "the group mirror could not be read"}
	case g.UpstreamID == "":
		out := Outcome{Kind: dispatch.Fail, Effects: onFail, Failure: &queue.Failure{
			Status: http.StatusConflict, Title: "Group not created", Detail: fmt.Sprintf("group %s was not created in TechPass", name),
		}}
		return Group{}, &out
	}
	return g, nil
}
