package tenants

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// TokenVerifier checks JWTs issued by projects' identity providers.
type TokenVerifier interface {
	// Issuer reads a token's "iss" without verifying it, to find the
	// provider to verify it with. The result is not to be trusted.
	Issuer(token string) (string, error)
	// Verify checks token against idp and returns the caller's subject.
	Verify(ctx context.Context, idp IdentityProvider, token string) (subject string, err error)
}

// DefaultMaxStale is how long, by default, an Authenticator keeps checking
// credentials against a snapshot the store cannot confirm is current.
const DefaultMaxStale = 30 * time.Second

// AuthConfig holds an Authenticator's dependencies.
type AuthConfig struct {
	Store Store
	// Tokens verifies JWT bearer tokens; nil refuses them.
	Tokens TokenVerifier
	// Operators are bootstrap operator keys (from a file or variable), by
	// their stored form; they work without being in the store.
	Operators []Key
	// RotationAge is the age past which a key is flagged for rotation;
	// default 180 days.
	RotationAge time.Duration
	// MaxStale bounds how long credentials are checked against the last
	// snapshot while the store cannot tell whether it is current (its
	// Generation, or a reload, fails): a revocation committed meanwhile
	// (through another replica) may be missed for at most this long. Past
	// it, every credential but the bootstrap operators' is refused with an
	// error that is not ErrUnauthenticated (a 500: the key is not wrong)
	// until the store answers. 0 means DefaultMaxStale; negative means
	// never use a snapshot the store did not just confirm.
	MaxStale time.Duration
	Now      func() time.Time
	Logger   *slog.Logger
}

// Authenticator finds the principal behind a bearer credential: an API key
// (looked up by id, compared in constant time) or a JWT from a project's
// identity provider. It is safe for concurrent use.
//
// It checks credentials against a snapshot of the store's keys, tenants and
// projects, reloaded whenever the store's Generation moves, so a revocation
// applies to the next request (across PostgreSQL replicas, once their
// Generation moves: within postgres.auth_cache_ttl). When the store fails, the snapshot last
// confirmed current serves for up to AuthConfig.MaxStale, with a warning
// logged when that starts and an error when it ends in refusals.
type Authenticator struct {
	cfg   AuthConfig
	dummy [sha256.Size]byte

	// cur is the snapshot requests are checked against; it is reloaded
	// (under loadMu, once) whenever the store's Generation moves.
	cur    atomic.Pointer[snapshot]
	loadMu sync.Mutex
	// health is the store's last state as seen here (healthy, stale or
	// refusing), so that only its changes are logged, not every request.
	health atomic.Int32

	mu     sync.Mutex
	used   map[string]time.Time
	warned map[string]bool
}

// The states of Authenticator.health.
const (
	storeHealthy int32 = iota
	storeStale
	storeRefusing
)

// snapshot is the store's tenants, projects and keys at one generation.
type snapshot struct {
	gen      uint64
	keys     map[string]Key
	tenants  map[string]Tenant
	projects map[string]Project // by tenant + "\x00" + name
	byIssuer map[string][]Project
	// confirmed is when (UnixNano, by AuthConfig.Now) the store last said
	// gen is current.
	confirmed atomic.Int64
}

// confirm notes that the store said at now that s is current.
func (s *snapshot) confirm(now time.Time) {
	n := now.UnixNano()
	for {
		old := s.confirmed.Load()
		if old >= n || s.confirmed.CompareAndSwap(old, n) {
			return
		}
	}
}

// snap returns a snapshot no older than the store's current generation or,
// when the store cannot tell, the last one if it was confirmed current
// within MaxStale.
func (a *Authenticator) snap(ctx context.Context) (*snapshot, error) {
	now := a.cfg.Now()
	gen, err := a.cfg.Store.Generation(ctx)
	if err != nil {
		return a.stale(now, fmt.Errorf("read the store's generation: %w", err))
	}
	if s := a.cur.Load(); s != nil && s.gen == gen {
		s.confirm(now)
		a.healthy()
		return s, nil
	}
	a.loadMu.Lock()
	defer a.loadMu.Unlock()
	if s := a.cur.Load(); s != nil && s.gen == gen {
		s.confirm(now)
		a.healthy()
		return s, nil
	}
	s, err := a.load(ctx)
	if err != nil {
		return a.stale(now, err)
	}
	s.confirm(now)
	a.cur.Store(s)
	a.healthy()
	return s, nil
}

// load reads a snapshot from the store.
func (a *Authenticator) load(ctx context.Context) (*snapshot, error) {
	// Read the generation before the data: a change committed meanwhile
	// moves it again, and the next call reloads.
	gen, err := a.cfg.Store.Generation(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the store's generation: %w", err)
	}
	s := &snapshot{gen: gen, keys: map[string]Key{}, tenants: map[string]Tenant{}, projects: map[string]Project{}, byIssuer: map[string][]Project{}}
	ts, err := a.cfg.Store.Tenants(ctx)
	if err != nil {
		return nil, fmt.Errorf("load tenants: %w", err)
	}
	for _, t := range ts {
		s.tenants[t.Name] = t
		ps, err := a.cfg.Store.Projects(ctx, t.Name)
		if err != nil {
			return nil, fmt.Errorf("load projects of %s: %w", t.Name, err)
		}
		for _, p := range ps {
			s.projects[t.Name+"\x00"+p.Name] = p
			if p.Identity != nil {
				s.byIssuer[p.Identity.Issuer] = append(s.byIssuer[p.Identity.Issuer], p)
			}
		}
	}
	ks, err := a.cfg.Store.Keys(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("load keys: %w", err)
	}
	for _, k := range ks {
		s.keys[k.ID] = k
	}
	return s, nil
}

// stale returns the last snapshot after the store failed with err, if it
// was confirmed current within MaxStale; err otherwise.
func (a *Authenticator) stale(now time.Time, err error) (*snapshot, error) {
	s := a.cur.Load()
	if s == nil {
		a.setHealth(storeRefusing, "the credential store failed before a snapshot was loaded; refusing credentials", err, 0)
		return nil, err
	}
	age := now.Sub(time.Unix(0, s.confirmed.Load()))
	if age > a.cfg.MaxStale {
		a.setHealth(storeRefusing, "the credential store has failed for longer than max_stale; refusing credentials", err, age)
		return nil, fmt.Errorf("%w (snapshot confirmed %s ago, more than the %s allowed)", err, age, max(a.cfg.MaxStale, 0))
	}
	a.setHealth(storeStale, "the credential store failed; checking credentials against the last snapshot for at most max_stale", err, age)
	return s, nil
}

// healthy notes that the store answered.
func (a *Authenticator) healthy() {
	if a.health.Swap(storeHealthy) != storeHealthy {
		a.cfg.Logger.Info("the credential store answers again; credentials are checked against its current state")
	}
}

// setHealth records the store's state and logs it when it changed.
func (a *Authenticator) setHealth(h int32, msg string, err error, age time.Duration) {
	if a.health.Swap(h) == h {
		return
	}
	level := slog.LevelWarn
	if h == storeRefusing {
		level = slog.LevelError
	}
	a.cfg.Logger.Log(context.Background(), level, msg, "error", err, "snapshot_age", age, "max_stale", a.cfg.MaxStale)
}

// NewAuthenticator returns an authenticator over cfg.Store.
func NewAuthenticator(cfg AuthConfig) *Authenticator {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RotationAge <= 0 {
		cfg.RotationAge = 180 * 24 * time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxStale == 0 {
		cfg.MaxStale = DefaultMaxStale
	}
	return &Authenticator{cfg: cfg, used: map[string]time.Time{}, warned: map[string]bool{}}
}

// Project returns the named project as the credentials are checked
// against it (the snapshot of Authenticate): every change made through
// this process applies at once, and one made through another replica as
// soon as the store's Generation moves here.
func (a *Authenticator) Project(ctx context.Context, tenant, name string) (Project, error) {
	s, err := a.snap(ctx)
	if err != nil {
		return Project{}, fmt.Errorf("project %s/%s: %w", tenant, name, err)
	}
	p, ok := s.projects[tenant+"\x00"+name]
	if !ok {
		return Project{}, fmt.Errorf("project %s/%s: %w", tenant, name, ErrNotFound)
	}
	return p, nil
}

// RotationAge returns the age past which keys are flagged for rotation.
func (a *Authenticator) RotationAge() time.Duration { return a.cfg.RotationAge }

// Authenticate returns the principal that presented credential. Failures
// wrap ErrUnauthenticated (with a reason safe to log) or ErrDisabled; any
// other error means the store could not be read (see AuthConfig.MaxStale)
// and says nothing about the credential.
func (a *Authenticator) Authenticate(ctx context.Context, credential string) (Principal, error) {
	if strings.HasPrefix(credential, "gk_") {
		return a.key(ctx, credential)
	}
	if strings.Count(credential, ".") == 2 {
		return a.jwt(ctx, credential)
	}
	return Principal{}, fmt.Errorf("%w: malformed credential", ErrUnauthenticated)
}

func (a *Authenticator) key(ctx context.Context, key string) (Principal, error) {
	m := keyRE.FindStringSubmatch(key)
	if m == nil {
		return Principal{}, fmt.Errorf("%w: malformed key", ErrUnauthenticated)
	}
	id := m[1]
	k, found, err := a.lookup(ctx, id)
	if err != nil {
		return Principal{}, fmt.Errorf("look up key %s: %w", id, err)
	}
	sum := sha256.Sum256([]byte(key))
	want := a.dummy
	if found {
		want = k.Hash
	}
	// Compare even for an unknown id, so it costs the same as a wrong secret.
	if subtle.ConstantTimeCompare(sum[:], want[:]) != 1 || !found {
		return Principal{}, fmt.Errorf("%w: unknown key or wrong secret (key id %s)", ErrUnauthenticated, id)
	}
	return a.principalOf(ctx, k)
}

// lookup finds a key among the bootstrap operators, then in the store's
// current snapshot.
func (a *Authenticator) lookup(ctx context.Context, id string) (Key, bool, error) {
	for _, k := range a.cfg.Operators {
		if k.ID == id {
			return k, true, nil
		}
	}
	s, err := a.snap(ctx)
	if err != nil {
		return Key{}, false, err
	}
	k, ok := s.keys[id]
	return k, ok, nil
}

func (a *Authenticator) jwt(ctx context.Context, token string) (Principal, error) {
	if a.cfg.Tokens == nil {
		return Principal{}, fmt.Errorf("%w: JWT bearer tokens are not enabled", ErrUnauthenticated)
	}
	iss, err := a.cfg.Tokens.Issuer(token)
	if err != nil {
		return Principal{}, fmt.Errorf("%w: malformed token", ErrUnauthenticated)
	}
	s, err := a.snap(ctx)
	if err != nil {
		return Principal{}, fmt.Errorf("look up issuer: %w", err)
	}
	projects := s.byIssuer[iss]
	var lastErr error = fmt.Errorf("%w: no project trusts this issuer", ErrUnauthenticated)
	for _, pr := range projects {
		sub, err := a.cfg.Tokens.Verify(ctx, *pr.Identity, token)
		if err != nil {
			lastErr = fmt.Errorf("%w: %v", ErrUnauthenticated, err)
			continue
		}
		if err := a.enabled(ctx, pr.Tenant, pr.Name); err != nil {
			return Principal{}, err
		}
		scopes := pr.Identity.Scopes
		if len(scopes) == 0 {
			scopes = ProjectScopes()
		}
		return Principal{Role: RoleProject, Subject: "jwt:" + iss + "#" + sub, Tenant: pr.Tenant, Project: pr.Name, Scopes: scopes}, nil
	}
	return Principal{}, lastErr
}

// enabled checks that the credential's tenant and project are not disabled.
func (a *Authenticator) enabled(ctx context.Context, tenant, project string) error {
	if tenant == "" {
		return nil
	}
	s, err := a.snap(ctx)
	if err != nil {
		return err
	}
	t, ok := s.tenants[tenant]
	if !ok {
		return fmt.Errorf("%w: tenant %s not found", ErrUnauthenticated, tenant)
	}
	if t.Disabled {
		return fmt.Errorf("%w: tenant %s", ErrDisabled, tenant)
	}
	if project == "" {
		return nil
	}
	p, ok := s.projects[tenant+"\x00"+project]
	if !ok {
		return fmt.Errorf("%w: project %s:%s not found", ErrUnauthenticated, tenant, project)
	}
	if p.Disabled {
		return fmt.Errorf("%w: project %s:%s", ErrDisabled, tenant, project)
	}
	return nil
}

// touch notes a key's use in memory (written by Flush, not per request) and
// warns once per process about a key due for rotation.
func (a *Authenticator) touch(k Key, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.used[k.ID] = now
	if a.RotationDue(k) && !a.warned[k.ID] {
		a.warned[k.ID] = true
		a.cfg.Logger.Warn("API key is due for rotation", "key_id", k.ID, "role", k.Role, "tenant", k.Tenant,
			"project", k.Project, "created", k.CreatedAt, "rotation_age", a.cfg.RotationAge)
	}
}

// RotationDue reports whether k is older than the rotation age.
func (a *Authenticator) RotationDue(k Key) bool {
	return !k.CreatedAt.IsZero() && a.cfg.Now().Sub(k.CreatedAt) > a.cfg.RotationAge
}

// LastUsed returns when k was last used, counting uses not yet flushed.
func (a *Authenticator) LastUsed(k Key) time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	if t, ok := a.used[k.ID]; ok && t.After(k.LastUsedAt) {
		return t
	}
	return k.LastUsedAt
}

// Flush writes the noted key uses to the store in one transaction.
func (a *Authenticator) Flush(ctx context.Context) error {
	a.mu.Lock()
	used := a.used
	a.used = map[string]time.Time{}
	a.mu.Unlock()
	if len(used) == 0 {
		return nil
	}
	if err := a.cfg.Store.TouchKeys(ctx, used); err != nil {
		a.mu.Lock()
		for id, t := range used { // keep them for the next flush
			if t.After(a.used[id]) {
				a.used[id] = t
			}
		}
		a.mu.Unlock()
		return fmt.Errorf("record key use: %w", err)
	}
	return nil
}
