package api

import "github.com/groupgate/groupgate/tenants"

// Access says who may call an operation. The handlers enforce it; the
// authorization matrix test checks every operation of the spec against this
// table for every role, so an operation cannot be added without a policy.
type Access struct {
	// Public operations need no credential.
	Public bool
	// Operator: operators may call it, for any tenant.
	Operator bool
	// TenantAdmin: tenant-admins may call it for their own tenant.
	TenantAdmin bool
	// Project: project credentials with this scope may call it for their
	// own project; empty means never.
	Project tenants.Scope
	// Signed operations are called by TechPass: they need no credential but
	// a valid signature of the request (X-TECHPASS-SIGNATURE); an API key
	// or JWT neither helps nor is needed, and an unsigned call is 401.
	Signed bool
	// HidesOthers: a caller outside the resource's reach is told it does
	// not exist (404) rather than refused (403), so ids reveal nothing.
	HidesOthers bool
}

// Policy returns the access policy of every operation, by operationId.
func Policy() map[string]Access {
	groupsRead := Access{TenantAdmin: true, Project: tenants.GroupsRead}
	groupsWrite := Access{TenantAdmin: true, Project: tenants.GroupsWrite}
	return map[string]Access{
		"getHealth":      {Public: true},
		"getReadiness":   {Public: true},
		"getOpenAPISpec": {Public: true},
		"getDocs":        {Public: true},
		"getMetrics":     {Operator: true},

		// Called by TechPass: no credential, the delivery's signature is
		// checked instead.
		"confirmWebhook": {Public: true},
		"receiveWebhook": {Signed: true},

		"listGroups":  groupsRead,
		"getGroup":    groupsRead,
		"getQueue":    groupsRead,
		"createGroup": groupsWrite,
		"deleteGroup": groupsWrite,
		"updateGroup": groupsWrite,

		"listMembers":   {TenantAdmin: true, Project: tenants.MembersRead},
		"addMembers":    {TenantAdmin: true, Project: tenants.MembersWrite},
		"removeMembers": {TenantAdmin: true, Project: tenants.MembersWrite},
		"removeMember":  {TenantAdmin: true, Project: tenants.MembersWrite},

		"listTenantGroups": {Operator: true, TenantAdmin: true},
		"getMirror":        {Operator: true, TenantAdmin: true},
		"syncMirror":       {Operator: true, TenantAdmin: true},

		"getOperation":    {TenantAdmin: true, Project: tenants.GroupsRead, HidesOthers: true},
		"cancelOperation": {TenantAdmin: true, Project: tenants.GroupsWrite, HidesOthers: true},
		"retryOperation":  {TenantAdmin: true, Project: tenants.GroupsWrite, HidesOthers: true},

		"listTenants":  {Operator: true},
		"createTenant": {Operator: true},
		"updateTenant": {Operator: true},
		"getTenant":    {Operator: true, TenantAdmin: true},

		"listProjects":  {Operator: true, TenantAdmin: true},
		"createProject": {Operator: true, TenantAdmin: true},
		"getProject":    {Operator: true, TenantAdmin: true},
		"updateProject": {Operator: true, TenantAdmin: true},

		"listKeys":  {Operator: true, TenantAdmin: true},
		"createKey": {Operator: true, TenantAdmin: true},
		"getKey":    {Operator: true, TenantAdmin: true, HidesOthers: true},
		"revokeKey": {Operator: true, TenantAdmin: true, HidesOthers: true},

		"listAudit": {Operator: true, TenantAdmin: true},
		"getBackup": {Operator: true},
	}
}
