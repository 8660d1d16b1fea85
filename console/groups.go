package console

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/groupgate/groupgate/client"
)

// projectView is a project's page: its groups, queue and pending work.
type projectView struct {
	Tenant, Project string
	Groups          []client.Group
	Next            string
	Ops             queueView
}

func (c *Console) projectPage(w http.ResponseWriter, r *http.Request, v *viewer) {
	ctx := v.ctx(r)
	pv := projectView{Tenant: upper(r, "tenant"), Project: upper(r, "project")}
	params := &client.ListGroupsParams{}
	if cur := r.URL.Query().Get("cursor"); cur != "" {
		params.CursorParam = &cur
	}
	var list client.GroupList
	resp, err := c.api.ListGroupsWithResponse(ctx, pv.Tenant, pv.Project, params)
	if err := result(resp, err, &list); err != nil {
		c.fail(w, r, v, err)
		return
	}
	pv.Groups = list.Groups
	if list.NextCursor != nil {
		pv.Next = *list.NextCursor
	}
	pv.Ops = c.queue(ctx, v, pv.Tenant, pv.Project)
	c.render(w, r, http.StatusOK, "project", v, pageData{Title: pv.Tenant + ":" + pv.Project, Data: pv})
}

// queueView lists the pending operations the caller may read.
type queueView struct {
	Tenant, Project string
	// Refused is why the API would not let the caller read this queue; then
	// nothing else is set.
	Refused string
	Ops     []client.Operation
	// More is set when more operations are pending than are listed.
	More bool
	// Unread counts listed operations the API did not return, and
	// ReadError says why (the first reason).
	Unread    int
	ReadError string
	// Status is the project's queue depth (project queues only).
	Status *client.QueueStatus
	// Projects are the depths of a tenant's project queues (tenant queues
	// only), the first queueListLimit projects.
	Projects []projectQueue
	// DepthHidden is set when the API shows the caller no project's queue
	// of the tenant (an operator: queues are the tenant's keys' business).
	DepthHidden bool
	// CSRF is the session's token, for the cancel forms.
	CSRF string
}

// queueListLimit bounds the operations one queue view reads, each with one
// API request (charged to the key's rate limit like any other).
const queueListLimit = 20

// projectQueue is one project's queue depth.
type projectQueue struct {
	Project string
	Status  client.QueueStatus
}

// queue reads the queue of a project (or of a tenant when project is "")
// as the API lets the caller: first the queue's status through getQueue
// (or the tenant's projects' through listProjects and getQueue), and only
// if the API allows that, for a project key, the first queueListLimit
// pending operations, each through getOperation, in dispatch order. A
// queue the caller may not read lists nothing, so the page tells nothing
// of it.
func (c *Console) queue(ctx context.Context, v *viewer, tenant, project string) queueView {
	qv := queueView{Tenant: tenant, Project: project, CSRF: v.session.CSRF}
	if project != "" {
		var q client.QueueStatus
		resp, err := c.api.GetQueueWithResponse(ctx, tenant, project)
		if err := result(resp, err, &q); err != nil {
			qv.Refused = errText(err)
			return qv
		}
		qv.Status = &q
	} else {
		var pl client.ProjectList
		resp, err := c.api.ListProjectsWithResponse(ctx, tenant)
		if err := result(resp, err, &pl); err != nil {
			qv.Refused = errText(err)
			return qv
		}
		for i, p := range pl.Projects {
			if i == queueListLimit {
				qv.More = true
				break
			}
			var q client.QueueStatus
			qresp, err := c.api.GetQueueWithResponse(ctx, tenant, p.Name)
			if err := result(qresp, err, &q); statusOf(err) == http.StatusForbidden {
				qv.DepthHidden = true
				break
			} else if err != nil {
				qv.Unread++
				if qv.ReadError == "" {
					qv.ReadError = errText(err)
				}
				continue
			}
			qv.Projects = append(qv.Projects, projectQueue{Project: p.Name, Status: q})
		}
	}
	// Operations are listed by project: the API let the caller read this
	// project's queue, and lets it read the project's operations.
	if c.cfg.Pending == nil || project == "" {
		return qv
	}
	ids, err := c.cfg.Pending.PendingIDs(ctx, tenant, project, queueListLimit+1)
	if err != nil {
		c.cfg.Logger.Warn("console: list pending operations", "tenant", tenant, "project", project, "err", err)
		qv.ReadError = "the queue could not be read"
		return qv
	}
	if len(ids) > queueListLimit {
		ids, qv.More = ids[:queueListLimit], true
	}
	for _, id := range ids {
		var op client.Operation
		resp, err := c.api.GetOperationWithResponse(ctx, id, nil)
		if err := result(resp, err, &op); err != nil {
			if statusOf(err) == http.StatusNotFound {
				continue // finished and gone since it was listed
			}
			qv.Unread++
			if qv.ReadError == "" {
				qv.ReadError = errText(err)
			}
			continue
		}
		if op.State == "queued" || op.State == "running" {
			qv.Ops = append(qv.Ops, op)
		}
	}
	return qv
}

func (c *Console) queuePage(w http.ResponseWriter, r *http.Request, v *viewer) {
	tenant, project := queueScope(r, v)
	qv := c.queue(v.ctx(r), v, tenant, project)
	if qv.Refused != "" {
		c.render(w, r, http.StatusForbidden, "error", v, pageData{Title: "Not done", Error: qv.Refused})
		return
	}
	c.render(w, r, http.StatusOK, "queue", v, pageData{Title: "Queue", Data: qv})
}

func (c *Console) queuePart(w http.ResponseWriter, r *http.Request, v *viewer) {
	tenant, project := queueScope(r, v)
	qv := c.queue(v.ctx(r), v, tenant, project)
	if qv.Refused != "" {
		http.Error(w, qv.Refused, http.StatusForbidden)
		return
	}
	c.renderPart(w, "queue-rows", qv)
}

// queueScope is the tenant and project a queue page asks for, defaulting
// to the caller's own.
func queueScope(r *http.Request, v *viewer) (string, string) {
	q := r.URL.Query()
	tenant, project := strings.ToUpper(q.Get("tenant")), strings.ToUpper(q.Get("project"))
	if tenant == "" {
		tenant, project = v.p.Tenant, v.p.Project
	}
	if v.p.Role == "project" && project == "" {
		project = v.p.Project
	}
	return tenant, project
}

func (c *Console) createGroup(w http.ResponseWriter, r *http.Request, v *viewer) {
	tenant, project := upper(r, "tenant"), upper(r, "project")
	in := client.CreateGroupRequest{Name: strings.TrimSpace(r.PostFormValue("name"))}
	if d := r.PostFormValue("description"); d != "" {
		in.Description = &d
	}
	resp, err := c.api.CreateGroupWithResponse(v.ctx(r), tenant, project, &client.CreateGroupParams{}, in)
	c.opDone(w, r, v, resp, err)
}

// groupView is a group's page.
type groupView struct {
	Tenant, Project string
	Group           client.Group
	Members         []client.Member
	Next            string
}

func (c *Console) groupPage(w http.ResponseWriter, r *http.Request, v *viewer) {
	ctx := v.ctx(r)
	gv := groupView{Tenant: upper(r, "tenant"), Project: upper(r, "project")}
	name := r.PathValue("group")
	resp, err := c.api.GetGroupWithResponse(ctx, gv.Tenant, gv.Project, name)
	if err := result(resp, err, &gv.Group); err != nil {
		c.fail(w, r, v, err)
		return
	}
	params := &client.ListMembersParams{}
	if cur := r.URL.Query().Get("cursor"); cur != "" {
		params.CursorParam = &cur
	}
	var members client.MemberList
	mresp, err := c.api.ListMembersWithResponse(ctx, gv.Tenant, gv.Project, name, params)
	if err := result(mresp, err, &members); err != nil && statusOf(err) != http.StatusForbidden {
		c.fail(w, r, v, err)
		return
	}
	gv.Members = members.Members
	if members.NextCursor != nil {
		gv.Next = *members.NextCursor
	}
	c.render(w, r, http.StatusOK, "group", v, pageData{Title: gv.Group.FullName, Data: gv})
}

// opDone answers a write that queued an operation: its page, which shows
// it finish.
func (c *Console) opDone(w http.ResponseWriter, r *http.Request, v *viewer, resp client.Response, err error) {
	var op client.Operation
	if err := result(resp, err, &op); err != nil {
		c.fail(w, r, v, err)
		return
	}
	http.Redirect(w, r, Prefix+"/operations/"+url.PathEscape(op.Id), http.StatusSeeOther)
}

func (c *Console) deleteGroup(w http.ResponseWriter, r *http.Request, v *viewer) {
	resp, err := c.api.DeleteGroupWithResponse(v.ctx(r), upper(r, "tenant"), upper(r, "project"), r.PathValue("group"), &client.DeleteGroupParams{})
	c.opDone(w, r, v, resp, err)
}

func (c *Console) describeGroup(w http.ResponseWriter, r *http.Request, v *viewer) {
	params := &client.UpdateGroupParams{}
	if etag := r.PostFormValue("etag"); etag != "" {
		params.IfMatchParam = &etag
	}
	resp, err := c.api.UpdateGroupWithResponse(v.ctx(r), upper(r, "tenant"), upper(r, "project"), r.PathValue("group"), params,
		client.UpdateGroupRequest{Description: r.PostFormValue("description")})
	c.opDone(w, r, v, resp, err)
}

func (c *Console) addMembers(w http.ResponseWriter, r *http.Request, v *viewer) {
	users := strings.FieldsFunc(r.PostFormValue("users"), func(r rune) bool {
		return r == ',' || r == ';' || r == ' ' || r == '\n' || r == '\r' || r == '\t'
	})
	resp, err := c.api.AddMembersWithResponse(v.ctx(r), upper(r, "tenant"), upper(r, "project"), r.PathValue("group"),
		&client.AddMembersParams{}, client.MembersRequest{Users: users})
	c.opDone(w, r, v, resp, err)
}

func (c *Console) removeMember(w http.ResponseWriter, r *http.Request, v *viewer) {
	resp, err := c.api.RemoveMemberWithResponse(v.ctx(r), upper(r, "tenant"), upper(r, "project"), r.PathValue("group"),
		r.PostFormValue("user"), &client.RemoveMemberParams{})
	c.opDone(w, r, v, resp, err)
}

// opView is an operation's page.
type opView struct {
	Op   client.Operation
	CSRF string
}

func (c *Console) readOp(w http.ResponseWriter, r *http.Request, v *viewer) (opView, bool) {
	var op client.Operation
	resp, err := c.api.GetOperationWithResponse(v.ctx(r), r.PathValue("id"), nil)
	if err := result(resp, err, &op); err != nil {
		c.fail(w, r, v, err)
		return opView{}, false
	}
	return opView{Op: op, CSRF: v.session.CSRF}, true
}

func (c *Console) operationPage(w http.ResponseWriter, r *http.Request, v *viewer) {
	if ov, ok := c.readOp(w, r, v); ok {
		c.render(w, r, http.StatusOK, "operation", v, pageData{Title: "Operation " + ov.Op.Id, Data: ov})
	}
}

func (c *Console) operationPart(w http.ResponseWriter, r *http.Request, v *viewer) {
	if ov, ok := c.readOp(w, r, v); ok {
		c.renderPart(w, "op-state", ov)
	}
}

func (c *Console) cancelOperation(w http.ResponseWriter, r *http.Request, v *viewer) {
	resp, err := c.api.CancelOperationWithResponse(v.ctx(r), r.PathValue("id"))
	c.opDone(w, r, v, resp, err)
}

func (c *Console) retryOperation(w http.ResponseWriter, r *http.Request, v *viewer) {
	resp, err := c.api.RetryOperationWithResponse(v.ctx(r), r.PathValue("id"), &client.RetryOperationParams{})
	c.opDone(w, r, v, resp, err)
}
