package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/swaggest/swgui/v5emb"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/api"
	"github.com/groupgate/groupgate/audit"
	"github.com/groupgate/groupgate/config"
	"github.com/groupgate/groupgate/console"
	"github.com/groupgate/groupgate/credentials"
	"github.com/groupgate/groupgate/dispatch"
	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/jwtauth"
	"github.com/groupgate/groupgate/metrics"
	"github.com/groupgate/groupgate/pgstore"
	"github.com/groupgate/groupgate/ratelimit"
	"github.com/groupgate/groupgate/secretbox"
	"github.com/groupgate/groupgate/tenants"
	"github.com/groupgate/groupgate/tlscert"
)

// Options are the process-level dependencies of a Server.
type Options struct {
	// Logger defaults to discarding.
	Logger *slog.Logger
	// Getenv reads secret variables; defaults to os.Getenv.
	Getenv func(string) string
	// Now defaults to time.Now.
	Now func() time.Time
	// OperatorKey, if set, is a bootstrap operator key for this process
	// only (the demo mode prints one); it is never stored.
	OperatorKey string
	// Resolver resolves identity providers' JWKS host names; nil means
	// the system's. Whatever it answers, only public addresses are dialled.
	Resolver *net.Resolver
}

// Server is the whole service: the store, the queue and every tenant's
// runtime, the HTTP API and, for tenants without an upstream, the built-in
// simulator. Create with New, then Run.
type Server struct {
	cfg    config.Config
	opts   Options
	logger *slog.Logger
	store  *backend
	queue  *dispatch.Dispatchers[groups.Effect]
	http   *http.Server
	ln     net.Listener
	box    *secretbox.Box
	auth   *tenants.Authenticator
	admin  *tenants.Admin
	audit  *audit.Log
	// metrics are the Prometheus series, served at /metrics.
	metrics *metrics.Metrics

	simOnce sync.Once
	sim     *embeddedSimulator
	simErr  error

	// credLoader loads the tenants' TechPass credentials.
	credLoader *credentials.Loader
	// runtimes are the running tenants' runtimes (runtime.go).
	runtimes *runtimes
	// console is the web console (console.go).
	console *console.Console
	// hooks answer TechPass's webhooks with the runtimes' receivers
	// (webhooks.go).
	hooks *webhookReceivers
	// signals carries the other replicas' signals on PostgreSQL
	// (signals.go); nil on bbolt.
	signals *pgstore.Listener
	// tenantSync asks for the runtimes to follow tenant changes made
	// through another replica (signals.go: syncChanged).
	tenantSync chan struct{}
	// leading holds this replica's leases on PostgreSQL (leases.go); nil
	// on bbolt.
	leading *pgstore.Leading
	// staleIDs are stored identity providers that no longer validate (identity.go).
	staleIDs staleIdentities
	// syncMu serializes replacing tenant runtimes (syncTenant).
	syncMu sync.Mutex

	// stopping is closed when shutdown begins.
	stopping chan struct{}
	// certs serves the TLS certificate; nil for plain HTTP.
	certs *tlscert.Reloader
	// metricsLn, if set, serves /metrics without a credential.
	metricsLn net.Listener

	closeOnce sync.Once
}

// New builds the service from a validated cfg: it opens the store, creates
// the configured tenants it does not have yet, builds every tenant's
// runtime (runtime.go), and binds the API's listener. Nothing is served
// until Run.
func New(cfg config.Config, opts Options) (_ *Server, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{cfg: cfg, opts: opts, logger: opts.Logger, stopping: make(chan struct{})}
	s.logRouteOverrides()
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	ctx := context.Background()

	if s.store, err = openStore(ctx, cfg, opts.Getenv, s.logger); err != nil {
		return nil, err
	}
	if err := s.openBox(); err != nil {
		return nil, err
	}
	s.credLoader = &credentials.Loader{
		Getenv: opts.Getenv, Now: opts.Now, Box: s.box, MaxAge: time.Duration(cfg.Credentials.MaxAge), Logger: s.logger,
	}
	operators, err := s.operatorKeys()
	if err != nil {
		return nil, err
	}
	tokens := jwtVerifier{jwtauth.NewVerifier(jwtauth.Options{Now: opts.Now, AllowLoopback: cfg.AllowLoopbackJWKS, Resolver: opts.Resolver})}
	s.auth = tenants.NewAuthenticator(tenants.AuthConfig{
		Store: s.store, Operators: operators, RotationAge: time.Duration(cfg.KeyRotationAge),
		Tokens: tokens,
		Now:    opts.Now, Logger: s.logger,
	})
	s.admin = tenants.NewAdmin(s.store, s.boxOrNil(), opts.Now)
	s.admin.CheckIdentityWith(tokens.checkIdentity)
	s.admin.CheckUpstreamWith(s.credLoader.Readable)
	s.admin.DefaultsFrom(cfg.GroupLimit, time.Duration(cfg.Interval))
	s.audit = audit.NewLog(s.store, opts.Now, s.logger)
	s.metrics = metrics.New(scrapeState{s}, opts.Now)
	if s.store.pg != nil {
		s.metrics.Registry.MustRegister(newLeaseCollector(s.store.pg))
	}
	s.queue = dispatch.NewDispatchers[groups.Effect](groups.NewLedger(s.store), opts.Now, s.logger)
	if err := s.useLeases(); err != nil { // PostgreSQL: one dispatcher per tenant across the replicas
		return nil, err
	}
	s.runtimes = newRuntimes(s.queue)
	s.hooks = newWebhookReceivers(s.metrics.Registry, s.runtimes, s.store)
	if err := s.seed(ctx); err != nil {
		return nil, err
	}
	s.staleIDs.validate = func(idp tenants.IdentityProvider) error { return tokens.v.Validate(provider(idp)) }
	if err := s.staleIDs.find(ctx, s); err != nil {
		return nil, err
	}
	if err := s.syncTenants(ctx); err != nil {
		return nil, err
	}
	if err := s.listen(); err != nil {
		return nil, err
	}
	svc := groups.NewService(groups.ServiceConfig{
		Store: s.store, Queue: s.queue, Quotas: quotas{r: s.runtimes, projects: s.auth}, Now: opts.Now,
		IdempotencyTTL: time.Duration(cfg.IdempotencyTTL),
	})

	if cfg.TLS.CertFile != "" {
		if s.certs, err = tlscert.NewReloader(cfg.TLS.CertFile, cfg.TLS.KeyFile, s.logger); err != nil {
			return nil, err
		}
	}
	e, err := s.newEcho(svc)
	if err != nil {
		return nil, err
	}
	s.http = &http.Server{
		Handler:           e,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		// Answers held by Prefer: wait must be written before this.
		WriteTimeout: time.Duration(cfg.MaxWait) + 30*time.Second,
		IdleTimeout:  2 * time.Minute,
		// Above the documented limit, which headerLimit enforces with a
		// problem; net/http refuses only what is far beyond it.
		MaxHeaderBytes: 2 * maxHeaderBytes,
		ErrorLog:       slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	if s.certs != nil {
		s.http.TLSConfig = s.certs.TLSConfig()
	}
	if s.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	if s.sim != nil {
		s.sim.connectWebhooks(s.URL()) // the simulator's webhooks reach this server
	}
	if cfg.MetricsListen != "" {
		if s.metricsLn, err = net.Listen("tcp", cfg.MetricsListen); err != nil {
			return nil, fmt.Errorf("listen on %s: %w", cfg.MetricsListen, err)
		}
	}
	return s, nil
}

// boxOrNil keeps a nil *secretbox.Box from becoming a non-nil interface.
func (s *Server) boxOrNil() tenants.Sealer {
	if s.box == nil {
		return nil
	}
	return s.box
}

// Addr returns the API's bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// MetricsURL returns the base URL of the separate metrics listener, or ""
// when metrics_listen is not set.
func (s *Server) MetricsURL() string {
	if s.metricsLn == nil {
		return ""
	}
	return "http://" + s.metricsLn.Addr().String()
}

// URL returns the API's base URL.
func (s *Server) URL() string {
	if s.certs != nil {
		return "https://" + s.ln.Addr().String()
	}
	return "http://" + s.ln.Addr().String()
}

// SimulatorURL returns the built-in simulator's base URL, or "" if no
// tenant uses it.
func (s *Server) SimulatorURL() string {
	if s.sim == nil {
		return ""
	}
	return s.sim.url
}

// Run serves the API and runs the queue until ctx ends, then shuts down
// gracefully: it stops accepting requests, lets the upstream call in flight
// finish (within the configured grace), and closes the store.
func (s *Server) Run(ctx context.Context) error {
	queueCtx, stopQueue := context.WithCancel(context.WithoutCancel(ctx))
	defer stopQueue()
	stopCredentialWatch := credentials.Watch(queueCtx, time.Duration(s.cfg.Credentials.CheckInterval), s.checkCredentials, s.Reload)
	defer stopCredentialWatch()
	queueDone := make(chan error, 1)
	go func() { queueDone <- s.queue.Run(queueCtx) }()

	go s.purgeIdempotencyKeys(queueCtx)
	go s.syncChanges(queueCtx)
	signalsDone := make(chan struct{})
	go func() {
		defer close(signalsDone)
		if s.signals != nil {
			_ = s.signals.Run(queueCtx) // signals from the other replicas (signals.go)
		}
	}()
	leadingDone := make(chan struct{})
	go func() {
		defer close(leadingDone)
		if s.leading != nil {
			_ = s.leading.Run(queueCtx) // this replica's heartbeat (leases.go)
		}
	}()
	if s.console != nil {
		go s.console.Run(queueCtx) // drops expired console sessions
	}
	flushed := make(chan struct{})
	go func() { defer close(flushed); s.flushKeyUse(queueCtx) }()

	serveErr := make(chan error, 1)
	go func() {
		if s.certs != nil {
			serveErr <- s.http.ServeTLS(s.ln, "", "")
			return
		}
		serveErr <- s.http.Serve(s.ln)
	}()
	if s.metricsLn != nil {
		ms := &http.Server{Handler: s.metrics.Handler(), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = ms.Serve(s.metricsLn) }()
		defer ms.Close()
	}
	where := s.cfg.StorePath
	if s.store.pg != nil {
		where = "postgres"
	}
	s.logger.Info("groupgate serving", "addr", s.URL(), "store", where)

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		runErr = fmt.Errorf("serve: %w", err)
	case err := <-queueDone:
		runErr = err
		queueDone <- err
	}
	// Stop taking new work from the queue at once (the call in flight may
	// finish within the grace), release answers held by Prefer: wait, and
	// let the HTTP server drain its requests. On PostgreSQL, depart first:
	// the leases the dispatchers release are then taken over at once.
	s.depart()
	stopQueue()
	close(s.stopping)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.http.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.logger.Warn("http shutdown", "err", err)
	}
	if err := <-queueDone; err != nil && runErr == nil {
		runErr = err
	}
	<-flushed
	<-signalsDone
	<-leadingDone
	s.Close()
	s.logger.Info("groupgate stopped")
	return runErr
}

// purgeIdempotencyKeys forgets expired idempotency keys at start and then
// hourly, until ctx ends.
func (s *Server) purgeIdempotencyKeys(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if n, err := s.store.PurgeIdempotency(ctx, s.opts.Now()); err != nil {
			s.logger.Warn("purge idempotency keys", "err", err)
		} else if n > 0 {
			s.logger.Info("purged expired idempotency keys", "count", n)
		}
		if n, err := s.store.PruneDeliveries(ctx, s.opts.Now()); err != nil {
			s.logger.Warn("prune webhook deliveries", "err", err)
		} else if n > 0 {
			s.logger.Info("forgot webhook deliveries past TechPass's retries", "count", n)
		}
		if n, err := s.audit.Purge(ctx, time.Duration(s.cfg.AuditRetention)); err != nil {
			s.logger.Warn("purge audit log", "err", err)
		} else if n > 0 {
			s.logger.Info("purged audit entries past retention", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// flushKeyUse writes API keys' last use every 30 s and once more at the
// end, so authentication needs no write per request.
func (s *Server) flushKeyUse(ctx context.Context) {
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := s.auth.Flush(context.WithoutCancel(ctx)); err != nil {
				s.logger.Warn("record key use", "err", err)
			}
			return
		case <-t.C:
			if err := s.auth.Flush(ctx); err != nil {
				s.logger.Warn("record key use", "err", err)
			}
		}
	}
}

// Close releases everything New acquired. Run calls it; call it directly
// only when Run is never called.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		if s.ln != nil {
			_ = s.ln.Close()
		}
		if s.metricsLn != nil {
			_ = s.metricsLn.Close()
		}
		if s.runtimes != nil {
			for _, rt := range s.runtimes.all() {
				rt.close()
			}
		}
		if s.sim != nil {
			s.sim.close()
		}
		if s.store != nil {
			if err := s.store.close(); err != nil {
				s.logger.Warn("close store", "err", err)
			}
		}
	})
}

func (s *Server) newEcho(svc *groups.Service) (*echo.Echo, error) {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = handleError(s.logger)
	e.Use(requestID())
	e.Use(secureHeaders(s.certs != nil)) // on every answer, errors included
	e.Use(accessLog(s.logger))
	e.Use(s.metrics.Middleware())
	spec := groupgate.PublishedSpec()
	doc, err := openapi3.NewLoader().LoadFromData(spec)
	if err != nil {
		return nil, fmt.Errorf("load openapi.yaml: %w", err)
	}
	// Audited before any refusal (431, a panic, 413) can answer the call.
	e.Use(s.auditCalls(auditedRoutes(doc)))
	e.Use(headerLimit(maxHeaderBytes)) // the first to look at the request (logged and counted)
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			s.logger.Error("handler panicked", "err", err, "path", c.Path())
			return err
		},
	}))
	e.Use(middleware.BodyLimit("1M"))

	secured := securedOperations(doc)
	auth := api.Authenticate(consoleAuth{s.auth})
	limit := ratelimit.New(s.cfg.RateLimit.PerSecond, s.cfg.RateLimit.Burst, s.opts.Now).PerCredential()
	mw := map[string][]echo.MiddlewareFunc{}
	for _, id := range secured {
		mw[id] = []echo.MiddlewareFunc{auth, limit}
	}
	// Deliveries are authenticated by their signature: limited per address.
	mw["receiveWebhook"] = []echo.MiddlewareFunc{ratelimit.New(s.cfg.RateLimit.PerSecond, s.cfg.RateLimit.Burst, s.opts.Now).ByRemoteIP()}
	// Parameters are checked against the spec after authentication and
	// rate limiting, before the handler.
	rules, err := paramRules(doc)
	if err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	for id, r := range rules {
		mw[id] = append(mw[id], checkParams(r))
	}
	docs := docsCSP(v5emb.New("groupgate API", "/openapi.yaml", "/docs/"))
	h := &api.Handlers{
		Stopping: s.stopping,
		Groups:   svc, Operations: s.store, Queue: s.queue, Settled: s.queue.Settled(),
		MaxWait: time.Duration(s.cfg.MaxWait), Spec: spec, Docs: docs, Now: s.opts.Now,
		Admin: s.admin, Directory: s.store, KeyStatus: s.auth, OnTenantChange: s.syncTenant,
		Audit: auditReader{s.audit}, Metrics: s.metrics.Handler(), Backups: s.store.backups, Mirrors: s.runtimes,
		Webhooks: s.hooks,
		Ready:    s.readiness,
	}
	mw["listGroups"] = append(mw["listGroups"], plainListGroups(h))
	api.RegisterHandlersWithOptions(e, h, api.RegisterHandlersOptions{OperationMiddlewares: mw})
	e.GET("/docs/*", notFoundAsProblem(docs))
	if err := s.mountConsole(e); err != nil {
		return nil, err
	}
	return e, nil
}

// plainListGroups answers the most frequent read, a project's group list
// with no query and no escaped path, without the generated wrapper's
// parameter binding (reflection for each declared query parameter), which
// has nothing to bind then: 5-8% of the cached list's throughput in
// BenchmarkList/http. Anything else goes through the wrapper.
func plainListGroups(h *api.Handlers) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if u := c.Request().URL; u.RawQuery == "" && u.RawPath == "" {
				return h.ListGroups(c, c.Param("tenant"), c.Param("project"), api.ListGroupsParams{})
			}
			return next(c)
		}
	}
}

// securedOperations returns the operationIds that the spec protects with a
// security requirement, so authentication follows the contract.
func securedOperations(doc *openapi3.T) []string {
	var ids []string
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			reqs := doc.Security
			if op.Security != nil {
				reqs = *op.Security
			}
			if len(reqs) > 0 {
				ids = append(ids, op.OperationID)
			}
		}
	}
	return ids
}

func (s *Server) readiness(ctx context.Context) map[string]error {
	checks := map[string]error{"store": s.store.Ping(ctx), "dispatchers": nil}
	if ok, stopped := s.queue.Running(); !ok {
		checks["dispatchers"] = fmt.Errorf("not running for %v", stopped)
	}
	s.upstreamChecks(checks)
	s.hooks.checks(ctx, checks, s.opts.Now())
	s.staleIDs.checks(ctx, s, checks)
	return checks
}
