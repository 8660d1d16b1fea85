package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/swaggest/swgui/v5emb"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/api"
	"github.com/groupgate/groupgate/boltstore"
	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/techpass"
	"github.com/groupgate/groupgate/tenants"
	"github.com/groupgate/groupgate/throttle"
)

// Options are the process-level dependencies of a Server.
type Options struct {
	// Logger defaults to discarding.
	Logger *slog.Logger
	// Getenv reads secret variables; defaults to os.Getenv.
	Getenv func(string) string
	// Now defaults to time.Now.
	Now func() time.Time
}

// Server is the whole service: the store, the per-tenant queue and
// TechPass clients, the HTTP API and, for tenants without an upstream, the
// built-in simulator. Create with New, then Run.
type Server struct {
	cfg    Config
	logger *slog.Logger
	store  *boltstore.Store
	queue  *throttle.Queue
	http   *http.Server
	ln     net.Listener
	sim    *embeddedSimulator
	// stopping is closed when shutdown begins.
	stopping chan struct{}

	closeOnce sync.Once
}

// New builds the service from a validated cfg: it opens the store, starts
// the simulator if a tenant needs it, and binds the API's listener. Nothing
// is served until Run.
func New(cfg Config, opts Options) (_ *Server, err error) {
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
	s := &Server{cfg: cfg, logger: opts.Logger, stopping: make(chan struct{})}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()

	if s.store, err = boltstore.Open(cfg.StorePath, 5*time.Second); err != nil {
		return nil, err
	}
	dir, err := tenants.NewDirectory(directoryTenants(cfg), opts.Now)
	if err != nil {
		return nil, err
	}
	if s.sim, err = startSimulator(&s.cfg, s.logger); err != nil {
		return nil, err
	}

	s.queue = throttle.NewQueue(s.store, opts.Now, s.logger)
	limits := map[string]int{}
	for _, t := range s.cfg.Tenants {
		gate := throttle.NewGate(s.interval(t)+time.Duration(s.cfg.PaceGuard), opts.Now)
		client, err := s.upstreamClient(t, gate, opts)
		if err != nil {
			return nil, err
		}
		limits[t.Name] = s.groupLimit(t)
		s.queue.Add(throttle.DispatcherConfig{
			Tenant:   t.Name,
			Gate:     gate,
			Interval: s.interval(t),
			Limits:   s.queueLimits(t),
			Handler:  groups.NewExecutor(client, opts.Now, s.logger.With("tenant", t.Name)),
			Retry: throttle.RetryPolicy{
				MaxFailures: cfg.Retry.MaxFailures,
				BaseDelay:   time.Duration(cfg.Retry.BaseDelay),
				MaxDelay:    time.Duration(cfg.Retry.MaxDelay),
			},
			Grace: time.Duration(cfg.ShutdownGrace),
		})
	}
	svc := groups.NewService(groups.ServiceConfig{
		Store: s.store, Operations: s.store, Queue: s.queue, Now: opts.Now,
		GroupLimit:     func(t string) int { return limits[t] },
		IdempotencyTTL: time.Duration(cfg.IdempotencyTTL),
	})

	e, err := s.newEcho(dir, svc, opts)
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
		ErrorLog:     slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	if s.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	return s, nil
}

// Addr returns the API's bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// URL returns the API's base URL.
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() }

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
	queueDone := make(chan error, 1)
	go func() { queueDone <- s.queue.Run(queueCtx) }()

	go s.purgeIdempotencyKeys(queueCtx)

	serveErr := make(chan error, 1)
	go func() { serveErr <- s.http.Serve(s.ln) }()
	s.logger.Info("groupgate serving", "addr", s.URL(), "store", s.cfg.StorePath)

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
	// let the HTTP server drain its requests.
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
		if n, err := s.store.PurgeIdempotency(ctx, time.Now()); err != nil {
			s.logger.Warn("purge idempotency keys", "err", err)
		} else if n > 0 {
			s.logger.Info("purged expired idempotency keys", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
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
		if s.sim != nil {
			s.sim.close()
		}
		if s.store != nil {
			if err := s.store.Close(); err != nil {
				s.logger.Warn("close store", "err", err)
			}
		}
	})
}

func (s *Server) groupLimit(t TenantConfig) int {
	if t.GroupLimit > 0 {
		return t.GroupLimit
	}
	return s.cfg.GroupLimit
}

func (s *Server) queueLimits(t TenantConfig) throttle.Limits {
	l := throttle.Limits{Tenant: s.cfg.MaxQueue, Project: s.cfg.MaxProjectQueue}
	if t.MaxQueue > 0 {
		l.Tenant = t.MaxQueue
	}
	if t.MaxProjectQueue > 0 {
		l.Project = t.MaxProjectQueue
	}
	return l
}

func (s *Server) interval(t TenantConfig) time.Duration {
	if t.Interval > 0 {
		return time.Duration(t.Interval)
	}
	return time.Duration(s.cfg.Interval)
}

// upstreamClient builds the tenant's TechPass client, paced by its own gate.
func (s *Server) upstreamClient(t TenantConfig, gate *throttle.Gate, opts Options) (*techpass.Client, error) {
	tp := t.TechPass
	secret, err := secretFrom(tp.ClientSecretFile, tp.ClientSecretEnv, opts.Getenv)
	if err != nil {
		return nil, fmt.Errorf("tenant %s client secret: %w", t.Name, err)
	}
	apiKey, err := secretFrom(tp.APIKeyFile, tp.APIKeyEnv, opts.Getenv)
	if err != nil {
		return nil, fmt.Errorf("tenant %s API key: %w", t.Name, err)
	}
	tokenURL := tp.TokenURL
	if tokenURL == "" {
		login := tp.LoginURL
		if login == "" {
			login = "https://login.microsoftonline.com"
		}
		tokenURL = techpass.TokenURL(login, tp.DirectoryID)
	}
	c, err := techpass.New(techpass.Config{
		Namespace: t.Name, APIURL: tp.APIURL, TokenURL: tokenURL, ClientID: tp.ClientID,
		ClientSecret: secret, APIKey: apiKey,
		Pacer:      gate,
		HTTPClient: &http.Client{Timeout: time.Duration(s.cfg.UpstreamTimeout)},
		Now:        opts.Now,
	})
	if err != nil {
		return nil, fmt.Errorf("tenant %s: %w", t.Name, err)
	}
	return c, nil
}

func (s *Server) newEcho(dir *tenants.Directory, svc *groups.Service, opts Options) (*echo.Echo, error) {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = handleError(s.logger)
	e.Use(requestID())
	e.Use(accessLog(s.logger))
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			s.logger.Error("handler panicked", "err", err, "path", c.Path())
			return err
		},
	}))
	e.Use(middleware.BodyLimit("1M"))
	e.Use(secureHeaders())

	spec := groupgate.OpenAPISpec()
	secured, err := securedOperations(spec)
	if err != nil {
		return nil, err
	}
	auth := api.Authenticate(dir)
	mw := map[string][]echo.MiddlewareFunc{}
	for _, id := range secured {
		mw[id] = []echo.MiddlewareFunc{auth}
	}
	docs := v5emb.New("groupgate API", "/openapi.yaml", "/docs/")
	h := &api.Handlers{
		Stopping: s.stopping,
		Groups:   svc, Operations: s.store, Queue: s.queue, Settled: s.queue.Settled(),
		MaxWait: time.Duration(s.cfg.MaxWait), Spec: spec, Docs: docs, Now: opts.Now,
		Ready: s.readiness,
	}
	api.RegisterHandlersWithOptions(e, h, api.RegisterHandlersOptions{OperationMiddlewares: mw})
	e.GET("/docs/*", echo.WrapHandler(docs))
	return e, nil
}

// securedOperations returns the operationIds that the spec protects with a
// security requirement, so authentication follows the contract.
func securedOperations(spec []byte) ([]string, error) {
	doc, err := openapi3.NewLoader().LoadFromData(spec)
	if err != nil {
		return nil, fmt.Errorf("load openapi.yaml: %w", err)
	}
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
	return ids, nil
}

func (s *Server) readiness(ctx context.Context) map[string]error {
	checks := map[string]error{"store": s.store.Ping(ctx), "dispatchers": nil}
	if ok, stopped := s.queue.Running(); !ok {
		checks["dispatchers"] = fmt.Errorf("not running for %v", stopped)
	}
	return checks
}

func directoryTenants(cfg Config) []tenants.Tenant {
	out := make([]tenants.Tenant, 0, len(cfg.Tenants))
	for _, t := range cfg.Tenants {
		tt := tenants.Tenant{Name: t.Name, GroupLimit: t.GroupLimit, Interval: time.Duration(t.Interval)}
		for _, p := range t.Projects {
			pp := tenants.Project{Name: p.Name}
			for _, k := range p.Keys {
				h, _ := tenants.ParseHash(k.Hash) // checked by Config.Validate
				key := tenants.Key{ID: k.ID, Hash: h, ExpiresAt: k.ExpiresAt}
				for _, sc := range k.Scopes {
					key.Scopes = append(key.Scopes, tenants.Scope(sc))
				}
				pp.Keys = append(pp.Keys, key)
			}
			tt.Projects = append(tt.Projects, pp)
		}
		out = append(out, tt)
	}
	return out
}

// simulatorSecretsDir is where generated simulator credentials are written.
func (c Config) simulatorSecretsDir() string {
	if c.Simulator.SecretsDir != "" {
		return c.Simulator.SecretsDir
	}
	return filepath.Join(filepath.Dir(c.StorePath), "simulator")
}
