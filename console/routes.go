package console

import (
	"io/fs"
	"net/http"
	"net/url"
	"strings"
)

func (c *Console) routes() {
	assets, _ := fs.Sub(assetFS, "assets")
	c.mux.Handle("GET "+Prefix+"/assets/", http.StripPrefix(Prefix+"/assets/", http.FileServerFS(assets)))
	c.mux.HandleFunc("GET "+Prefix, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Prefix+"/", http.StatusSeeOther)
	})
	c.mux.HandleFunc("GET "+Prefix+"/signin", c.signinPage)
	c.mux.HandleFunc("POST "+Prefix+"/signin", c.signin)
	c.mux.HandleFunc("POST "+Prefix+"/signout", c.authed(false, c.signout))
	c.mux.HandleFunc("GET "+Prefix+"/{$}", c.authed(false, c.home))

	c.mux.HandleFunc("GET "+Prefix+"/tenants", c.authed(false, c.tenantsPage))
	c.mux.HandleFunc("GET "+Prefix+"/tenants/{tenant}", c.authed(false, c.tenantPage))
	c.mux.HandleFunc("GET "+Prefix+"/keys", c.authed(false, c.keysPage))
	c.mux.HandleFunc("POST "+Prefix+"/keys", c.authed(false, c.issueKey))
	c.mux.HandleFunc("GET "+Prefix+"/keys/issued", c.authed(false, c.issuedPage))
	c.mux.HandleFunc("POST "+Prefix+"/keys/{id}/revoke", c.authed(false, c.revokeKey))
	c.mux.HandleFunc("GET "+Prefix+"/audit", c.authed(false, c.auditPage))

	const project = Prefix + "/tenants/{tenant}/projects/{project}"
	c.mux.HandleFunc("GET "+project, c.authed(false, c.projectPage))
	c.mux.HandleFunc("POST "+project+"/groups", c.authed(false, c.createGroup))
	c.mux.HandleFunc("GET "+project+"/groups/{group}", c.authed(false, c.groupPage))
	c.mux.HandleFunc("POST "+project+"/groups/{group}/delete", c.authed(false, c.deleteGroup))
	c.mux.HandleFunc("POST "+project+"/groups/{group}/description", c.authed(false, c.describeGroup))
	c.mux.HandleFunc("POST "+project+"/groups/{group}/members/add", c.authed(false, c.addMembers))
	c.mux.HandleFunc("POST "+project+"/groups/{group}/members/remove", c.authed(false, c.removeMember))

	c.mux.HandleFunc("GET "+Prefix+"/queue", c.authed(false, c.queuePage))
	c.mux.HandleFunc("GET "+Prefix+"/live/queue", c.authed(true, c.queuePart))
	c.mux.HandleFunc("GET "+Prefix+"/operations/{id}", c.authed(false, c.operationPage))
	c.mux.HandleFunc("GET "+Prefix+"/live/operations/{id}", c.authed(true, c.operationPart))
	c.mux.HandleFunc("POST "+Prefix+"/operations/{id}/cancel", c.authed(false, c.cancelOperation))
	c.mux.HandleFunc("POST "+Prefix+"/operations/{id}/retry", c.authed(false, c.retryOperation))
}

// home sends each role to its starting page.
func (c *Console) home(w http.ResponseWriter, r *http.Request, v *viewer) {
	switch v.p.Role {
	case "operator":
		http.Redirect(w, r, Prefix+"/tenants", http.StatusSeeOther)
	case "tenant-admin":
		http.Redirect(w, r, Prefix+"/tenants/"+url.PathEscape(v.p.Tenant), http.StatusSeeOther)
	default:
		http.Redirect(w, r, projectURL(v.p.Tenant, v.p.Project), http.StatusSeeOther)
	}
}

func projectURL(tenant, project string) string {
	return Prefix + "/tenants/" + url.PathEscape(tenant) + "/projects/" + url.PathEscape(project)
}

// upper is how the API names tenants and projects.
func upper(r *http.Request, name string) string { return strings.ToUpper(r.PathValue(name)) }
