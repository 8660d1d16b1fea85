package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/groupgate/groupgate/dispatch"
	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/pacing"
	"github.com/groupgate/groupgate/queue"
	"github.com/groupgate/groupgate/secretbox"
	"github.com/groupgate/groupgate/techpass"
	"github.com/groupgate/groupgate/tenants"
)

// seed creates the tenants, projects and keys of the configuration that the
// store does not have yet. The store is the source of truth: an entry that
// exists there is left alone (change it through the admin API).
func (s *Server) seed(ctx context.Context) error {
	now := s.opts.Now()
	for _, tc := range s.cfg.Tenants {
		t := tenants.Tenant{
			Name: tc.Name, GroupLimit: s.cfg.GroupLimit, Interval: time.Duration(s.cfg.Interval),
			CreatedAt: now, UpdatedAt: now,
			TechPass: tenants.TechPass{
				APIURL: tc.TechPass.APIURL, DirectoryID: tc.TechPass.DirectoryID, ClientID: tc.TechPass.ClientID,
				TokenURL:              tc.TechPass.TokenURL,
				ClientSecret:          credentialRef(tc.TechPass.ClientSecretFile+tc.TechPass.ClientCertificateFile, tc.TechPass.ClientSecretEnv, now), // or a certificate bundle
				APIKey:                credentialRef(tc.TechPass.APIKeyFile, tc.TechPass.APIKeyEnv, now),
				WebhookSecret:         credentialRef(tc.TechPass.WebhookSecretFile, tc.TechPass.WebhookSecretEnv, now),
				PreviousWebhookSecret: credentialRef(tc.TechPass.PreviousWebhookSecretFile, tc.TechPass.PreviousWebhookSecretEnv, now),
			},
		}
		if tc.TechPass.TokenURL == "" && tc.TechPass.LoginURL != "" {
			t.TechPass.TokenURL = techpass.TokenURL(tc.TechPass.LoginURL, tc.TechPass.DirectoryID)
		}
		if tc.GroupLimit > 0 {
			t.GroupLimit = tc.GroupLimit
		}
		if tc.Interval > 0 {
			t.Interval = time.Duration(tc.Interval)
		}
		err := s.store.CreateTenant(ctx, t)
		switch {
		case errors.Is(err, tenants.ErrConflict):
			s.logger.Info("tenant from the configuration exists in the store; the store's settings apply", "tenant", t.Name)
		case err != nil:
			return fmt.Errorf("seed tenant %s: %w", t.Name, err)
		default:
			s.logger.Info("tenant created from the configuration", "tenant", t.Name)
		}
		for _, pc := range tc.Projects {
			if _, err := s.store.Project(ctx, tc.Name, pc.Name); errors.Is(err, tenants.ErrNotFound) {
				spec := tenants.ProjectSpec{Name: pc.Name}
				if pc.GroupQuota > 0 {
					q := pc.GroupQuota
					spec.GroupQuota = &q
				}
				if _, err := s.admin.CreateProject(ctx, tc.Name, spec); err != nil {
					return fmt.Errorf("seed project %s:%s: %w", tc.Name, pc.Name, err)
				}
			}
			for _, kc := range pc.Keys {
				if _, err := s.store.Key(ctx, kc.ID); err == nil {
					continue
				}
				h, _ := tenants.ParseHash(kc.Hash) // checked by Config.Validate
				k := tenants.Key{ID: kc.ID, Name: "from configuration", Role: tenants.RoleProject, Tenant: tc.Name, Project: pc.Name,
					Hash: h, ExpiresAt: kc.ExpiresAt, CreatedBy: "configuration", CreatedAt: now}
				for _, sc := range kc.Scopes {
					k.Scopes = append(k.Scopes, tenants.Scope(sc))
				}
				if err := k.Validate(); err != nil {
					return fmt.Errorf("seed key %s: %w", kc.ID, err)
				}
				if err := s.store.CreateKey(ctx, k); err != nil {
					return fmt.Errorf("seed key %s: %w", kc.ID, err)
				}
			}
		}
	}
	return nil
}

func credentialRef(file, env string, now time.Time) tenants.Credential {
	switch {
	case file != "":
		return tenants.Credential{Kind: tenants.CredentialFile, Ref: file, SetAt: now}
	case env != "":
		return tenants.Credential{Kind: tenants.CredentialEnv, Ref: env, SetAt: now}
	}
	return tenants.Credential{}
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

// syncTenant (re)builds a tenant's pacing gate, TechPass client and
// dispatcher from its stored settings, or pauses its queue if it is
// disabled. It runs at start-up and after every change through the admin
// API; operations stay queued in the store meanwhile.
func (s *Server) syncTenant(ctx context.Context, name string) error {
	// One rebuild at a time: two concurrent admin changes must not leave
	// the mirror endpoints with a reconciler that no dispatcher runs.
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	t, err := s.store.Tenant(ctx, name)
	if err != nil {
		return fmt.Errorf("sync tenant %s: %w", name, err)
	}
	if t.Disabled {
		s.queue.Remove(t.Name)
		s.mirrors.remove(t.Name)
		s.creds.remove(t.Name) // no upstream check for a paused tenant
		s.hooks.remove(t.Name)
		s.logger.Info("tenant disabled: its queue is paused", "tenant", t.Name)
		return nil
	}
	gate := pacing.NewGate(t.Interval+time.Duration(s.cfg.PaceGuard), s.opts.Now)
	gate.ObserveLateness(s.metrics.lateness(t.Name))
	client, err := s.upstreamClient(ctx, t, gate)
	if err != nil {
		return err
	}
	log := s.logger.With("tenant", t.Name)
	rec := groups.NewReconciler(groups.ReconcilerConfig{
		Tenant: t.Name, Upstream: client, Store: s.store, Every: time.Duration(s.cfg.ReconcileEvery),
		KnownProject: func(ctx context.Context, project string) (bool, error) {
			_, err := s.store.Project(ctx, t.Name, project)
			if errors.Is(err, tenants.ErrNotFound) {
				return false, nil
			}
			return err == nil, err
		},
		OnDrift: s.recordDrift,
		OnPass:  func(p groups.Pass) { s.metrics.passed(t.Name, p) },
		Now:     s.opts.Now,
		Logger:  log,
	})
	s.queue.Put(dispatch.Config[groups.Effect]{
		Tenant:     t.Name,
		Gate:       gate,
		Interval:   t.Interval,
		Limits:     s.queueLimits(t.Name),
		Handler:    groups.NewExecutor(client, s.store, s.opts.Now, log),
		Background: rec,
		Retry: dispatch.RetryPolicy{
			MaxDuration: time.Duration(s.cfg.Retry.MaxDuration),
			MaxFailures: s.cfg.Retry.MaxFailures,
			BaseDelay:   time.Duration(s.cfg.Retry.BaseDelay),
			MaxDelay:    time.Duration(s.cfg.Retry.MaxDelay),
		},
		Grace: time.Duration(s.cfg.ShutdownGrace),
		OnSettled: func(op queue.Operation) {
			s.metrics.settled(op)
			s.recordOutcome(op)
		},
		OnStarted: s.metrics.started,
		Undo:      groups.Undo,
	})
	s.mirrors.put(t.Name, rec, s.queue)
	hook, err := s.webhookReceiver(t)
	if err != nil {
		return err
	}
	s.hooks.put(t.Name, hook)
	return nil
}

// upstreamClient builds the tenant's TechPass client, paced by gate. A
// tenant without an API URL gets the built-in simulator.
func (s *Server) upstreamClient(ctx context.Context, t tenants.Tenant, gate *pacing.Gate) (*techpass.Client, error) {
	tp := t.TechPass
	if tp.APIURL == "" {
		sim, err := s.simulatorFor(t)
		if err != nil {
			return nil, err
		}
		tp = sim
	}
	creds, err := s.credentialsFor(t, tp) // secret or certificate, rotated without restart
	if err != nil {
		return nil, err
	}
	tc := s.tenantTechPass(t.Name)
	routes := techpass.Routes()
	if t.TechPass.APIURL != "" {
		if routes, err = tc.resolveRoutes(); err != nil {
			return nil, fmt.Errorf("tenant %s: %w", t.Name, err) // Validate reported it already
		}
	}
	tokenURL := tp.TokenURL
	if tokenURL == "" {
		tokenURL = techpass.TokenURL("https://login.microsoftonline.com", tp.DirectoryID)
	}
	c, err := techpass.New(techpass.Config{
		Namespace: t.Name, APIURL: tp.APIURL, TokenURL: tokenURL, ClientID: tp.ClientID,
		ClientSecret: creds.ClientSecret, ClientCertificate: creds.Certificate, APIKey: creds.APIKey,
		AssertionAlg: s.assertionAlg(t.Name),
		Routes:       routes, MembersSource: tc.MembersSource, MemberPageSize: tc.MemberPageSize,
		Renewal: techpass.RenewalPolicy{
			Share: s.cfg.Credentials.TokenRenewalShare, Min: time.Duration(s.cfg.Credentials.TokenRenewalMin),
		},
		Pacer:      gate,
		Observe:    s.metrics.observeUpstream(t.Name),
		HTTPClient: &http.Client{Timeout: time.Duration(s.cfg.UpstreamTimeout)},
		Now:        s.opts.Now,
		Logger:     s.logger.With("tenant", t.Name),
	})
	if err != nil {
		return nil, fmt.Errorf("tenant %s: %w", t.Name, err)
	}
	creds.tp = c
	if prev := s.creds.get(t.Name); prev != nil {
		// For the same application (KeepToken checks), its valid token
		// keeps serving, as across a rotated credential file, and a changed
		// client credential is tried at the next renewal (now due), without
		// stopping the tenant if it is refused.
		if old := prev.techpassClient(); old != nil && c.KeepToken(old) && !prev.sameClientCredential(creds) {
			c.CredentialsChanged()
		}
	}
	s.creds.put(creds)
	return c, nil
}

// storeQuotas gives the groups service each tenant's group limit and each
// project's quota, from the store.
type storeQuotas struct{ s *Server }

func (q storeQuotas) GroupLimits(ctx context.Context, tenant, project string) (int, int, error) {
	t, err := q.s.store.Tenant(ctx, tenant)
	if err != nil {
		return 0, 0, err
	}
	p, err := q.s.store.Project(ctx, tenant, project)
	if err != nil {
		return 0, 0, err
	}
	return t.GroupLimit, p.GroupQuota, nil
}

// openBox reads the key-encryption key, if one is configured.
func (s *Server) openBox() error {
	var kek []byte
	switch {
	case s.cfg.KEKFile != "":
		b, err := readSecretFile(s.cfg.KEKFile)
		if err != nil {
			return fmt.Errorf("key-encryption key: %w", err)
		}
		kek = b
	case s.opts.Getenv("GROUPGATE_KEK") != "":
		kek = []byte(s.opts.Getenv("GROUPGATE_KEK"))
	default:
		return nil
	}
	box, err := secretbox.New(kek)
	if err != nil {
		return err
	}
	s.box = box
	s.logger.Info("credentials written through the API are stored encrypted", "kek_id", box.KeyID())
	return nil
}

// operatorKeys reads the bootstrap operator key, if one is configured.
func (s *Server) operatorKeys() ([]tenants.Key, error) {
	var key string
	switch {
	case s.opts.OperatorKey != "":
		key = s.opts.OperatorKey
	case s.cfg.OperatorKeyFile != "":
		b, err := readSecretFile(s.cfg.OperatorKeyFile)
		if err != nil {
			return nil, fmt.Errorf("operator key: %w", err)
		}
		key = string(b)
	case s.opts.Getenv("GROUPGATE_OPERATOR_KEY") != "":
		key = s.opts.Getenv("GROUPGATE_OPERATOR_KEY")
	default:
		return nil, nil
	}
	id := tenants.KeyID(key)
	if id == "" {
		return nil, errors.New("operator key: not a gk_<keyid>_<secret> key (groupgate newkey makes one)")
	}
	return []tenants.Key{{ID: id, Name: "bootstrap operator", Role: tenants.RoleOperator, Hash: sha256Sum(key), CreatedBy: "configuration"}}, nil
}
