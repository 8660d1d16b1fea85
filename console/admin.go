package console

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/groupgate/groupgate/client"
)

// tenantRow is one tenant's health, as the caller may see it.
type tenantRow struct {
	client.Tenant
	Credentials []credentialRow
	// TokenState is the tenant's upstream readiness check: "ok",
	// "notice" (passing, with a warning), "failing", or "unknown" (no
	// check, or readiness could not be read); TokenDetail says more.
	TokenState  string
	TokenDetail string
	// Depth is the pending operations, -1 when the caller may not see it.
	Depth      int
	Dispatcher string
	Mirror     *client.MirrorStatus
	Projects   []client.Project
}

type credentialRow struct {
	Name, Kind, Age, Ref, Fingerprint string
}

// health is what the tenants page reads once for all tenants.
type health struct {
	ready   *client.Readiness // nil: readiness could not be read
	metrics *metricValues     // nil: not read (only operators may)
}

func (c *Console) readHealth(ctx context.Context, v *viewer) health {
	var h health
	resp, err := c.api.GetReadinessWithResponse(ctx)
	var ready client.Readiness
	// 503 still carries the checks.
	if err == nil && (resp.StatusCode() == http.StatusOK || resp.StatusCode() == http.StatusServiceUnavailable) &&
		result(okStatus{resp}, nil, &ready) == nil {
		h.ready = &ready
	}
	if v.p.Role == "operator" {
		if m, err := c.api.GetMetricsWithResponse(ctx); err == nil && m.StatusCode() == http.StatusOK {
			h.metrics = parseMetrics(m.Body)
		}
	}
	return h
}

// okStatus lets a 503 readiness answer be decoded like a 200.
type okStatus struct{ client.Response }

func (o okStatus) StatusCode() int { return http.StatusOK }

func (c *Console) tenantRow(ctx context.Context, h health, t client.Tenant) tenantRow {
	row := tenantRow{Tenant: t, Depth: -1, TokenState: "unknown"}
	now := c.cfg.Now()
	// When each credential last changed, as the server's credential loader
	// saw it (a file's modification time, a stored value's setting).
	var changed map[string]time.Time
	if c.cfg.CredentialAges != nil {
		changed = c.cfg.CredentialAges(t.Name)
	}
	for _, cr := range []struct {
		name string
		info client.CredentialInfo
	}{{CredentialClient, t.Techpass.ClientSecret}, {CredentialAPIKey, t.Techpass.ApiKey}} {
		r := credentialRow{Name: cr.name, Kind: string(cr.info.Kind), Age: "—"}
		if at, ok := changed[cr.name]; ok {
			r.Age = ageText(now.Sub(at))
		} else if cr.info.SetAt != nil {
			r.Age = ageText(now.Sub(*cr.info.SetAt))
		}
		if cr.info.Ref != nil {
			r.Ref = *cr.info.Ref
		}
		if cr.info.Fingerprint != nil {
			r.Fingerprint = *cr.info.Fingerprint
		}
		row.Credentials = append(row.Credentials, r)
	}
	if at, ok := changed[CredentialKey]; ok {
		row.Credentials = append(row.Credentials, credentialRow{Name: CredentialKey, Kind: "file", Age: ageText(now.Sub(at))})
	}
	var checks map[string]client.Check
	if h.ready != nil {
		checks = h.ready.Checks
	}
	switch chk, ok := checks["upstream:"+t.Name]; {
	case h.ready == nil:
		row.TokenDetail = "readiness could not be read"
	case !ok:
		row.TokenDetail = "no TechPass client yet"
	default:
		row.TokenState = "failing"
		if chk.Status == "ok" {
			row.TokenState = "ok"
		}
		if chk.Detail != nil {
			row.TokenDetail = *chk.Detail
			if chk.Status == "ok" {
				row.TokenState = "notice"
			}
		}
	}
	if chk, ok := checks["dispatchers"]; ok {
		row.Dispatcher = "this process"
		if chk.Status != "ok" {
			row.Dispatcher = "stopped"
			if chk.Detail != nil {
				row.Dispatcher += ": " + *chk.Detail
			}
		}
	}
	if h.metrics != nil {
		row.Depth = h.metrics.depth[t.Name]
	}
	var m client.MirrorStatus
	resp, err := c.api.GetMirrorWithResponse(ctx, t.Name)
	if result(resp, err, &m) == nil {
		row.Mirror = &m
	}
	return row
}

func (c *Console) tenantsPage(w http.ResponseWriter, r *http.Request, v *viewer) {
	ctx := v.ctx(r)
	var list client.TenantList
	resp, err := c.api.ListTenantsWithResponse(ctx)
	if err := result(resp, err, &list); err != nil {
		c.fail(w, r, v, err)
		return
	}
	h := c.readHealth(ctx, v)
	rows := make([]tenantRow, 0, len(list.Tenants))
	for _, t := range list.Tenants {
		rows = append(rows, c.tenantRow(ctx, h, t))
	}
	c.render(w, r, http.StatusOK, "tenants", v, pageData{Title: "Tenants", Data: rows})
}

func (c *Console) tenantPage(w http.ResponseWriter, r *http.Request, v *viewer) {
	ctx := v.ctx(r)
	name := upper(r, "tenant")
	var t client.Tenant
	resp, err := c.api.GetTenantWithResponse(ctx, name)
	if err := result(resp, err, &t); err != nil {
		c.fail(w, r, v, err)
		return
	}
	row := c.tenantRow(ctx, c.readHealth(ctx, v), t)
	var projects client.ProjectList
	presp, err := c.api.ListProjectsWithResponse(ctx, name)
	if err := result(presp, err, &projects); err != nil {
		c.fail(w, r, v, err)
		return
	}
	row.Projects = projects.Projects
	if row.Depth < 0 && len(projects.Projects) > 0 {
		// Tenant-admins read the tenant's depth from a project's queue.
		var q client.QueueStatus
		qresp, err := c.api.GetQueueWithResponse(ctx, name, projects.Projects[0].Name)
		if result(qresp, err, &q) == nil {
			row.Depth = int(q.Tenant.Pending)
		}
	}
	c.render(w, r, http.StatusOK, "tenant", v, pageData{Title: "Tenant " + name, Data: row})
}

// keysView is the keys page.
type keysView struct {
	Tenant   string
	Keys     []client.Key
	Tenants  []string
	Projects []string
	Scopes   []client.Scope
	Issued   *client.KeyCreated
}

func (c *Console) keysView(ctx context.Context, v *viewer, tenant string) (keysView, error) {
	kv := keysView{Tenant: tenant, Scopes: []client.Scope{client.GroupsRead, client.GroupsWrite, client.MembersRead, client.MembersWrite}}
	params := &client.ListKeysParams{}
	if tenant != "" {
		params.Tenant = &tenant
	}
	var list client.KeyList
	resp, err := c.api.ListKeysWithResponse(ctx, params)
	if err := result(resp, err, &list); err != nil {
		return kv, err
	}
	kv.Keys = list.Keys
	if v.p.Role == "tenant-admin" {
		kv.Tenants = []string{v.p.Tenant}
	} else {
		var tl client.TenantList
		tresp, err := c.api.ListTenantsWithResponse(ctx)
		if result(tresp, err, &tl) == nil {
			for _, t := range tl.Tenants {
				kv.Tenants = append(kv.Tenants, t.Name)
			}
		}
	}
	for _, t := range kv.Tenants {
		var pl client.ProjectList
		presp, err := c.api.ListProjectsWithResponse(ctx, t)
		if result(presp, err, &pl) == nil {
			for _, p := range pl.Projects {
				kv.Projects = append(kv.Projects, p.Name)
			}
		}
	}
	slices.Sort(kv.Projects)
	kv.Projects = slices.Compact(kv.Projects)
	return kv, nil
}

func (c *Console) keysPage(w http.ResponseWriter, r *http.Request, v *viewer) {
	kv, err := c.keysView(v.ctx(r), v, strings.ToUpper(r.URL.Query().Get("tenant")))
	if err != nil {
		c.fail(w, r, v, err)
		return
	}
	c.render(w, r, http.StatusOK, "keys", v, pageData{Title: "API keys", Data: kv})
}

// issueKey creates a key through the API and sends the browser to the page
// that shows it once (POST-redirect-GET); until then the key is held in
// memory for the session alone, for at most issuedTTL.
func (c *Console) issueKey(w http.ResponseWriter, r *http.Request, v *viewer) {
	ctx := v.ctx(r)
	in := client.KeyInput{Name: strings.TrimSpace(r.PostFormValue("name")), Role: client.Role(r.PostFormValue("role"))}
	if t := strings.ToUpper(strings.TrimSpace(r.PostFormValue("tenant"))); t != "" {
		in.Tenant = &t
	}
	if p := strings.ToUpper(strings.TrimSpace(r.PostFormValue("project"))); p != "" && in.Role == client.RoleProject {
		in.Project = &p
	}
	if in.Role == client.RoleProject {
		var scopes []client.Scope
		for _, s := range r.PostForm["scope"] {
			scopes = append(scopes, client.Scope(s))
		}
		if len(scopes) > 0 {
			in.Scopes = &scopes
		}
	}
	if d := strings.TrimSpace(r.PostFormValue("expires")); d != "" {
		t, err := time.Parse("2006-01-02", d)
		if err != nil {
			c.render(w, r, http.StatusBadRequest, "error", v, pageData{Title: "Not done", Error: "The expiry must be a date (YYYY-MM-DD)."})
			return
		}
		in.ExpiresAt = &t
	}
	var created client.KeyCreated
	resp, err := c.api.CreateKeyWithResponse(ctx, in)
	if err := result(resp, err, &created); err != nil {
		c.fail(w, r, v, err)
		return
	}
	c.issued.put(v.id, created, c.cfg.Now())
	http.Redirect(w, r, Prefix+"/keys/issued", http.StatusSeeOther)
}

// issuedPage shows the key the session's last issue created, once: the
// key is forgotten as it is shown, so reloading the page neither shows it
// again nor issues another.
func (c *Console) issuedPage(w http.ResponseWriter, r *http.Request, v *viewer) {
	created, ok := c.issued.take(v.id, c.cfg.Now())
	if !ok {
		c.render(w, r, http.StatusNotFound, "error", v, pageData{Title: "Key already shown",
			Error: "A new key is shown only once, and this one was. If it was not stored, revoke it and issue another."})
		return
	}
	c.render(w, r, http.StatusOK, "key-issued", v, pageData{Title: "Key issued", Data: created})
}

func (c *Console) revokeKey(w http.ResponseWriter, r *http.Request, v *viewer) {
	id := r.PathValue("id")
	resp, err := c.api.RevokeKeyWithResponse(v.ctx(r), id)
	if err := result(resp, err, nil); err != nil {
		c.fail(w, r, v, err)
		return
	}
	// Revoking the session's own key ends the session at the next request.
	http.Redirect(w, r, Prefix+"/keys"+queryString("tenant", r.PostFormValue("tenant")), http.StatusSeeOther)
}

// auditView is the audit page: its filters and one page of entries.
type auditView struct {
	Tenant, Project, Actor, Action, Since string
	Entries                               []client.AuditEntry
	Next                                  string
}

func (c *Console) auditPage(w http.ResponseWriter, r *http.Request, v *viewer) {
	q := r.URL.Query()
	av := auditView{
		Tenant: strings.ToUpper(q.Get("tenant")), Project: strings.ToUpper(q.Get("project")),
		Actor: q.Get("actor"), Action: q.Get("action"), Since: q.Get("since"),
	}
	limit := 50
	params := &client.ListAuditParams{Limit: &limit}
	for _, f := range []struct {
		v   string
		dst **string
	}{{av.Tenant, &params.Tenant}, {av.Project, &params.Project}, {av.Actor, &params.Actor}, {av.Action, &params.Action}, {q.Get("cursor"), &params.Cursor}} {
		if f.v != "" {
			s := f.v
			*f.dst = &s
		}
	}
	if av.Since != "" {
		t, err := time.Parse("2006-01-02", av.Since)
		if err != nil {
			c.render(w, r, http.StatusBadRequest, "error", v, pageData{Title: "Not done", Error: "“Since” must be a date (YYYY-MM-DD)."})
			return
		}
		params.Since = &t
	}
	var page client.AuditPage
	resp, err := c.api.ListAuditWithResponse(v.ctx(r), params)
	if err := result(resp, err, &page); err != nil {
		c.fail(w, r, v, err)
		return
	}
	av.Entries = page.Entries
	if page.Next != nil {
		av.Next = *page.Next
	}
	c.render(w, r, http.StatusOK, "audit", v, pageData{Title: "Audit log", Data: av})
}

// metricValues are the few series the tenants page shows, read from the
// API's /metrics (which only operators may read).
type metricValues struct {
	depth map[string]int // by tenant
}

var metricLine = regexp.MustCompile(`^(groupgate_queue_depth)\{([^}]*)\} (\S+)$`)
var labelPair = regexp.MustCompile(`(\w+)="((?:[^"\\]|\\.)*)"`)

func parseMetrics(body []byte) *metricValues {
	m := &metricValues{depth: map[string]int{}}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		f := metricLine.FindStringSubmatch(sc.Text())
		if f == nil {
			continue
		}
		labels := map[string]string{}
		for _, l := range labelPair.FindAllStringSubmatch(f[2], -1) {
			labels[l[1]] = l[2]
		}
		val, err := strconv.ParseFloat(f[3], 64)
		if err != nil {
			continue
		}
		m.depth[labels["tenant"]] += int(val)
	}
	return m
}
