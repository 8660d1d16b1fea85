package server

import (
	"fmt"
	"time"

	"github.com/groupgate/groupgate/config"
	"github.com/groupgate/groupgate/queue"
	"github.com/groupgate/groupgate/techpass"
	"github.com/groupgate/groupgate/tenants"
)

// tenantSettings are one tenant's resolved settings: the configuration's
// defaults, overridden by the tenant's entry in the configuration and by its
// stored record. They are resolved once per runtime (resolveSettings) and
// are the one source of every per-tenant limit: the pacing gate, the
// dispatcher (and so the queue's limits, pace and estimates), the groups
// service's group limit, and the built-in simulator's namespace all read
// them. A project's group quota is the project's own record, read at each
// create (projects change without a rebuild of their tenant).
type tenantSettings struct {
	// Tenant is the stored record the settings were resolved from.
	Tenant tenants.Tenant
	// Interval is the least gap between the starts of two upstream
	// requests (the stored record's; admin-created tenants take the
	// configured default).
	Interval time.Duration
	// PaceGuard is added to Interval by the gate (pace_guard).
	PaceGuard time.Duration
	// GroupLimit is the namespace's group limit (the stored record's).
	GroupLimit int
	// Queue bounds the pending operations of the tenant and of each of its
	// projects (max_queue and max_project_queue, the tenant's entry in the
	// configuration overriding the defaults).
	Queue queue.Limits

	// Routes is the Automation API route table, with the configuration's
	// corrections for a tenant with its own upstream.
	Routes []techpass.Route
	// MembersSource, MemberPageSize and AssertionAlg are the tenant's
	// techpass settings of the same names in the configuration.
	MembersSource  string
	MemberPageSize int
	AssertionAlg   string
	// KeyFile is the client certificate's private key file, when the
	// configuration names one for the certificate the tenant uses (a
	// tenant with its own upstream only).
	KeyFile string
}

// resolveSettings resolves tenant t's settings from cfg and its record.
func resolveSettings(cfg config.Config, t tenants.Tenant) (tenantSettings, error) {
	st := tenantSettings{
		Tenant: t, Interval: t.Interval, PaceGuard: time.Duration(cfg.PaceGuard), GroupLimit: t.GroupLimit,
		Queue:  queue.Limits{Tenant: cfg.MaxQueue, Project: cfg.MaxProjectQueue},
		Routes: techpass.Routes(),
	}
	tc, ok := cfg.Tenant(t.Name)
	if !ok {
		return st, nil
	}
	if tc.MaxQueue > 0 {
		st.Queue.Tenant = tc.MaxQueue
	}
	if tc.MaxProjectQueue > 0 {
		st.Queue.Project = tc.MaxProjectQueue
	}
	tp := tc.TechPass
	st.MembersSource, st.MemberPageSize, st.AssertionAlg = tp.MembersSource, tp.MemberPageSize, tp.ClientAssertionAlg
	if t.TechPass.APIURL != "" {
		routes, err := tp.ResolveRoutes()
		if err != nil {
			return tenantSettings{}, fmt.Errorf("tenant %s: %w", t.Name, err) // Validate reported it already
		}
		st.Routes = routes
		if c := t.TechPass.ClientSecret; tp.ClientKeyFile != "" && c.Kind == tenants.CredentialFile && c.Ref == tp.ClientCertificateFile {
			st.KeyFile = tp.ClientKeyFile
		}
	}
	return st, nil
}

// logRouteOverrides logs, once at start, every route an operator's
// configuration corrected, and how members are read.
func (s *Server) logRouteOverrides() {
	for _, c := range s.cfg.Tenants {
		tp := c.TechPass
		if tp.MembersSource != "" || tp.MemberPageSize != 0 {
			s.logger.Info("TechPass members read as configured", "tenant", c.Name,
				"members_source", tp.MembersSource, "member_page_size", tp.MemberPageSize)
		}
		if len(tp.Routes) == 0 {
			continue
		}
		routes, err := tp.ResolveRoutes()
		if err != nil {
			continue // Validate reported it
		}
		for _, r := range routes {
			if r.Overridden {
				s.logger.Info("TechPass route corrected by configuration", "tenant", c.Name, "route", r.Name,
					"request", r.Describe(), "published", r.Published)
			}
		}
	}
}
