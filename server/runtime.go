package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/groupgate/groupgate/api"
	"github.com/groupgate/groupgate/credentials"
	"github.com/groupgate/groupgate/dispatch"
	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/pacing"
	"github.com/groupgate/groupgate/pgstore"
	"github.com/groupgate/groupgate/queue"
	"github.com/groupgate/groupgate/techpass"
	"github.com/groupgate/groupgate/tenants"
	"github.com/groupgate/groupgate/webhooks"
)

// tenantRuntime is everything a running tenant uses to work its queue and
// reach TechPass: its resolved settings, pacing gate, credentials, TechPass
// client, mirror reconciler, webhook receiver, and the dispatcher the queue
// runs for it (whose metric hooks are bound to the tenant). buildRuntime
// builds it whole; it is never changed afterwards, only replaced whole
// (runtimes.replace) after every change to the tenant through the admin
// API, or dropped when the tenant is disabled.
type tenantRuntime struct {
	settings   tenantSettings
	gate       *pacing.Gate
	creds      *credentials.Tenant
	client     *techpass.Client
	httpClient *http.Client
	reconciler *groups.Reconciler
	hook       *webhooks.Receiver
	dispatcher dispatch.Config[groups.Effect]
}

// name returns the runtime's tenant.
func (rt *tenantRuntime) name() string { return rt.settings.Tenant.Name }

// close releases what the runtime holds once it is replaced or dropped and
// its dispatcher has stopped: the idle connections of its TechPass client.
// Calls still in flight (a webhook delivery, a mirror status) finish with it.
func (rt *tenantRuntime) close() { rt.httpClient.CloseIdleConnections() }

// buildRuntime builds tenant t's runtime. prev, the runtime it replaces
// (nil for the first), hands over its access token when the application is
// the same. Nothing running is changed when it fails.
func (s *Server) buildRuntime(t tenants.Tenant, prev *tenantRuntime) (*tenantRuntime, error) {
	st, err := resolveSettings(s.cfg, t)
	if err != nil {
		return nil, err
	}
	rt := &tenantRuntime{
		settings:   st,
		gate:       pacing.NewGate(st.Interval+st.PaceGuard, s.opts.Now),
		httpClient: &http.Client{Timeout: time.Duration(s.cfg.UpstreamTimeout)},
	}
	rt.gate.ObserveLateness(s.metrics.Lateness(t.Name))
	if err := s.upstreamClient(rt, prev); err != nil {
		return nil, err
	}
	log := s.logger.With("tenant", t.Name)
	rt.reconciler = groups.NewReconciler(groups.ReconcilerConfig{
		Tenant: t.Name, Upstream: rt.client, Store: s.store, Every: time.Duration(s.cfg.ReconcileEvery),
		KnownProject: func(ctx context.Context, project string) (bool, error) {
			_, err := s.store.Project(ctx, t.Name, project)
			if errors.Is(err, tenants.ErrNotFound) {
				return false, nil
			}
			return err == nil, err
		},
		OnDrift: s.recordDrift,
		OnPass:  func(p groups.Pass) { s.metrics.Passed(t.Name, p) },
		Now:     s.opts.Now,
		Logger:  log,
	})
	if rt.hook, err = s.webhookReceiver(st); err != nil {
		return nil, err
	}
	rt.dispatcher = dispatch.Config[groups.Effect]{
		Tenant:     t.Name,
		Gate:       rt.gate,
		Interval:   st.Interval,
		Limits:     st.Queue,
		Handler:    groups.NewExecutor(rt.client, s.store, s.opts.Now, log),
		Background: rt.reconciler,
		Retry: dispatch.RetryPolicy{
			MaxDuration: time.Duration(s.cfg.Retry.MaxDuration),
			MaxFailures: s.cfg.Retry.MaxFailures,
			BaseDelay:   time.Duration(s.cfg.Retry.BaseDelay),
			MaxDelay:    time.Duration(s.cfg.Retry.MaxDelay),
		},
		Grace: time.Duration(s.cfg.ShutdownGrace),
		OnSettled: func(op queue.Operation) {
			s.metrics.Settled(op)
			s.recordOutcome(op)
			s.signal(pgstore.ChannelSettled, op.ID) // a Prefer: wait held by another replica
		},
		OnStarted: s.metrics.Started,
		Undo:      groups.Undo,
	}
	return rt, nil
}

// upstreamClient loads rt's credentials and builds its TechPass client,
// paced by rt.gate. A tenant without an API URL gets the built-in simulator.
func (s *Server) upstreamClient(rt *tenantRuntime, prev *tenantRuntime) error {
	st := rt.settings
	name, tp := st.Tenant.Name, st.Tenant.TechPass
	if tp.APIURL == "" {
		sim, err := s.simulatorFor(st)
		if err != nil {
			return err
		}
		tp = sim
	}
	creds, err := s.credLoader.Load(name, tp, st.KeyFile) // secret or certificate, rotated without restart
	if err != nil {
		return err
	}
	tokenURL := tp.TokenURL
	if tokenURL == "" {
		tokenURL = techpass.TokenURL("https://login.microsoftonline.com", tp.DirectoryID)
	}
	c, err := techpass.New(techpass.Config{
		Namespace: name, APIURL: tp.APIURL, TokenURL: tokenURL, ClientID: tp.ClientID,
		ClientSecret: creds.ClientSecret, ClientCertificate: creds.Certificate, APIKey: creds.APIKey,
		AssertionAlg: st.AssertionAlg,
		Routes:       st.Routes, MembersSource: st.MembersSource, MemberPageSize: st.MemberPageSize,
		Renewal: techpass.RenewalPolicy{
			Share: s.cfg.Credentials.TokenRenewalShare, Min: time.Duration(s.cfg.Credentials.TokenRenewalMin),
		},
		Pacer:      rt.gate,
		Observe:    s.metrics.ObserveUpstream(name),
		HTTPClient: rt.httpClient,
		Now:        s.opts.Now,
		Logger:     s.logger.With("tenant", name),
	})
	if err != nil {
		return fmt.Errorf("tenant %s: %w", name, err)
	}
	creds.Attach(c)
	// For the same application (KeepToken checks), its valid token keeps
	// serving, as across a rotated credential file, and a changed client
	// credential is tried at the next renewal (now due), without stopping
	// the tenant if it is refused.
	if prev != nil && c.KeepToken(prev.client) && !prev.creds.SameClientCredential(creds) {
		c.CredentialsChanged()
	}
	rt.creds, rt.client = creds, c
	return nil
}

// runtimes is the registry of the running tenants' runtimes, one per
// tenant. It answers the mirror endpoints (api.Mirrors). Safe for
// concurrent use.
type runtimes struct {
	queue *dispatch.Dispatchers[groups.Effect]
	// signal, if set, tells the other replicas of a mirror pass requested
	// of tenant (signals.go).
	signal func(tenant string)

	mu       sync.Mutex
	byTenant map[string]*tenantRuntime
}

func newRuntimes(q *dispatch.Dispatchers[groups.Effect]) *runtimes {
	return &runtimes{queue: q, byTenant: map[string]*tenantRuntime{}}
}

// replace makes rt its tenant's runtime, in one step for every reader of
// the registry, then has the queue stop the previous dispatcher (its call in
// flight may finish within its grace) and run rt's, and closes the previous
// runtime. In between, a mirror pass requested of rt's reconciler waits for
// rt's dispatcher; nothing is lost.
func (r *runtimes) replace(rt *tenantRuntime) {
	r.mu.Lock()
	old := r.byTenant[rt.name()]
	r.byTenant[rt.name()] = rt
	r.mu.Unlock()
	r.queue.Put(rt.dispatcher)
	if old != nil {
		old.close()
	}
}

// remove stops and drops tenant's runtime, if any. Its queue stays in the
// store and resumes when a runtime is built again.
func (r *runtimes) remove(tenant string) {
	r.queue.Remove(tenant)
	r.mu.Lock()
	old := r.byTenant[tenant]
	delete(r.byTenant, tenant)
	r.mu.Unlock()
	if old != nil {
		old.close()
	}
}

// get returns tenant's runtime, nil if it has none (unknown or disabled).
func (r *runtimes) get(tenant string) *tenantRuntime {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byTenant[tenant]
}

// all returns every runtime, by tenant name.
func (r *runtimes) all() []*tenantRuntime {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*tenantRuntime, 0, len(r.byTenant))
	for _, rt := range r.byTenant {
		out = append(out, rt)
	}
	slices.SortFunc(out, func(a, b *tenantRuntime) int { return strings.Compare(a.name(), b.name()) })
	return out
}

// Status implements api.Mirrors.
func (r *runtimes) Status(tenant string) (groups.Status, bool) {
	rt := r.get(tenant)
	if rt == nil {
		return groups.Status{}, false
	}
	return rt.reconciler.Status(), true
}

// Request implements api.Mirrors: the pass starts in the next free slot
// of whichever replica runs the tenant's dispatcher.
func (r *runtimes) Request(tenant string) bool {
	ok := r.requestHere(tenant)
	if ok && r.signal != nil {
		r.signal(tenant)
	}
	return ok
}

// requestHere requests a mirror pass of tenant's reconciler in this
// process.
func (r *runtimes) requestHere(tenant string) bool {
	rt := r.get(tenant)
	if rt == nil {
		return false
	}
	rt.reconciler.Request()
	r.queue.Wake(tenant)
	return true
}

// quotas gives the groups service each tenant's group limit, from its
// runtime's settings, and each project's quota, from the project's record
// as the authenticator holds it (the record the request's credential was
// checked against: no database read; a quota changed through another
// replica applies here within postgres.auth_cache_ttl, like a revocation).
type quotas struct {
	r        *runtimes
	projects interface {
		Project(ctx context.Context, tenant, name string) (tenants.Project, error)
	}
}

// GroupLimits implements groups.Quotas. A tenant without a runtime is
// disabled (or gone), and takes no writes.
func (q quotas) GroupLimits(ctx context.Context, tenant, project string) (int, int, error) {
	rt := q.r.get(tenant)
	if rt == nil {
		return 0, 0, fmt.Errorf("group limits of tenant %s: %w", tenant, tenants.ErrDisabled)
	}
	p, err := q.projects.Project(ctx, tenant, project)
	if err != nil {
		return 0, 0, err
	}
	return rt.settings.GroupLimit, p.GroupQuota, nil
}

// syncTenants builds the runtime of every tenant in the store.
func (s *Server) syncTenants(ctx context.Context) error {
	ts, err := s.store.Tenants(ctx)
	if err != nil {
		return fmt.Errorf("read tenants: %w", err)
	}
	for _, t := range ts {
		if err := s.syncTenant(ctx, t.Name); err != nil {
			return err
		}
	}
	return nil
}

// syncTenant builds a tenant's runtime from its stored record and replaces
// the running one with it, or drops it (pausing its queue) if the tenant is
// disabled. It runs at start-up and after every change through the admin
// API; operations stay queued in the store meanwhile. When the new runtime
// cannot be built, the running one stays.
func (s *Server) syncTenant(ctx context.Context, name string) error {
	// One rebuild at a time: two concurrent admin changes must not
	// interleave their replacements.
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	t, err := s.store.Tenant(ctx, name)
	if err != nil {
		return fmt.Errorf("sync tenant %s: %w", name, err)
	}
	if t.Disabled {
		s.runtimes.remove(t.Name) // and with it the upstream check of a paused tenant
		s.hooks.forget(t.Name)
		s.logger.Info("tenant disabled: its queue is paused", "tenant", t.Name)
		return nil
	}
	rt, err := s.buildRuntime(t, s.runtimes.get(t.Name))
	if err != nil {
		return err
	}
	s.runtimes.replace(rt)
	return nil
}

// Reload re-reads every tenant's TechPass credentials and requests a new
// access token with them, as SIGHUP does. In-flight upstream calls finish
// with the credentials they hold.
func (s *Server) Reload(ctx context.Context) {
	s.logger.Info("reloading TechPass credentials")
	for _, rt := range s.runtimes.all() {
		rt.creds.Reload(ctx)
	}
}

// checkCredentials checks every runtime's credentials for changes.
func (s *Server) checkCredentials() {
	for _, rt := range s.runtimes.all() {
		rt.creds.Check()
	}
}

// upstreamChecks adds the check "upstream:<TENANT>" of every tenant
// runtime to checks.
func (s *Server) upstreamChecks(checks map[string]error) {
	for _, rt := range s.runtimes.all() {
		checks["upstream:"+rt.name()] = upstreamCheck(rt.client, rt.creds)
	}
}

// upstreamCheck is the readiness check of one tenant's TechPass access. It
// fails when the tenant cannot call TechPass at all: the token endpoint
// refuses its credentials (or they cannot be used) and no valid access token
// is left, so every write of the tenant fails until an operator fixes them.
// It does not fail while a valid token remains (a rotation not yet
// complete, a refusal with time left to fix it: both are logged at error
// level when they begin), nor during a temporary token endpoint outage
// (queued operations wait and retry). Its detail adds the credential
// warnings: age past max_age, a certificate near expiry, a rotation not yet
// usable.
//
// While a valid token remains, a refusal is still reported, as the passing
// check's detail (an api.Notice), so a rotation that TechPass refused shows
// before the token runs out.
func upstreamCheck(client *techpass.Client, tc *credentials.Tenant) error {
	h := client.Health()
	if h.State != techpass.TokenRefused && h.State != techpass.CredentialUnusable {
		return nil
	}
	detail := strings.Join(slices.Compact(append([]string{h.Problem()}, tc.Warnings()...)), "; ")
	if !h.TokenValidUntil.IsZero() {
		return api.Notice(detail)
	}
	return errors.New(detail)
}
