package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/groupgate/groupgate/api"
	"github.com/groupgate/groupgate/techpass"
	"github.com/groupgate/groupgate/tenants"
)

// The credential loader. A tenant's TechPass credentials (its client
// credential, a client secret or a certificate bundle, and its namespace API
// key) are read from files a secret manager mounts, from environment
// variables, or from values sealed in the store. They are loaded when the
// tenant's runtime is built (a missing or unusable one stops it), then
// checked every credentials.check_interval and at SIGHUP: a changed
// credential is read, validated, and swapped in, while in-flight calls
// finish with the values they already hold. A changed credential that is
// unusable (empty, a key that does not match its certificate, a half-written
// PEM) is not swapped in: the previous value stays in use and the problem is
// logged, until a later check sees a usable one. A rotation tells the
// TechPass client, which renews its token with the new credential at the
// next call (at once, on SIGHUP).
//
// The client credential is a certificate bundle when it holds PEM (a
// certificate, and its RSA private key unless a key file is configured):
// then the client authenticates with certificate client assertions, as
// TechPass recommends. Anything else is a client secret. So rotating from a
// secret to a certificate needs no restart either.
//
// Only this file and package techpass ever hold a credential value: logs and
// /readyz name credentials by kind, source and age, never by value.

// credentialKind names one credential of a tenant.
type credentialKind string

const (
	// kindClient is the client credential: a client secret, or a PEM
	// bundle (certificate, and its private key unless the key has its own
	// file) for certificate client assertions.
	kindClient credentialKind = "client credential"
	kindKey    credentialKind = "client private key"
	kindAPIKey credentialKind = "API key"
)

// pemMarker starts every PEM block; an Azure AD client secret never
// contains it, so a client credential holding it is a certificate bundle.
const pemMarker = "-----BEGIN "

// credentialSource is where one credential is read from: a file, an
// environment variable, or a value sealed in the store.
type credentialSource struct {
	kind credentialKind
	ref  tenants.Credential
	// open returns a sealed value in clear; set for stored credentials.
	open func() ([]byte, error)

	// The last content read, and when it last changed (the file's
	// modification time, when the value was stored, or when this process
	// first saw the variable). Guarded by tenantCredentials.mu.
	data    []byte
	changed time.Time
	// problem is why the last read could not be used, nil when it could.
	problem error
	// aged is whether the credential is flagged as older than max_age.
	aged bool
}

// where names the source for logs and /readyz, never its value.
func (s *credentialSource) where() string {
	switch s.ref.Kind {
	case tenants.CredentialFile:
		return "file " + s.ref.Ref
	case tenants.CredentialEnv:
		return "variable " + s.ref.Ref
	default:
		return "stored value"
	}
}

// read returns the credential's current content and when it last changed.
func (s *credentialSource) read(getenv func(string) string, now time.Time) ([]byte, time.Time, error) {
	var b []byte
	var changed time.Time
	switch s.ref.Kind {
	case tenants.CredentialFile:
		fi, err := os.Stat(s.ref.Ref)
		if err != nil {
			return nil, time.Time{}, err
		}
		if b, err = os.ReadFile(s.ref.Ref); err != nil {
			return nil, time.Time{}, err
		}
		changed = fi.ModTime()
	case tenants.CredentialEnv:
		b = []byte(getenv(s.ref.Ref))
		changed = s.changed
		if changed.IsZero() || !bytes.Equal(bytes.TrimSpace(b), s.data) {
			changed = now
		}
	case tenants.CredentialStored:
		if s.open == nil {
			return nil, time.Time{}, errors.New("stored encrypted, but no key-encryption key is configured")
		}
		var err error
		if b, err = s.open(); err != nil {
			return nil, time.Time{}, fmt.Errorf("open stored value: %w", err)
		}
		changed = s.ref.SetAt
	default:
		return nil, time.Time{}, errors.New("not configured")
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, time.Time{}, errors.New("empty")
	}
	return b, changed, nil
}

// tenantCredentials holds one tenant's TechPass credentials in memory and
// keeps them current. It is safe for concurrent use.
type tenantCredentials struct {
	tenant string
	log    *slog.Logger
	getenv func(string) string
	now    func() time.Time
	maxAge time.Duration

	client, key, apiKey *credentialSource // key is nil unless a key file is configured

	mu     sync.Mutex
	secret string                // the client secret, when the client credential is one
	cert   *techpass.Certificate // the certificate, when it is a bundle
	apiKV  string
	tp     *techpass.Client
}

// ages returns when each of the tenant's credentials last changed, by
// kind, for the credential-age metric.
func (tc *tenantCredentials) ages() map[string]time.Time {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	out := map[string]time.Time{}
	for _, s := range tc.sources() {
		if !s.changed.IsZero() {
			out[string(s.kind)] = s.changed
		}
	}
	return out
}

func (tc *tenantCredentials) sources() []*credentialSource {
	out := []*credentialSource{tc.client}
	if tc.key != nil {
		out = append(out, tc.key)
	}
	return append(out, tc.apiKey)
}

// ClientSecret, Certificate and APIKey are the techpass credential
// functions: they return the values in memory. Certificate returns nil,
// nil while the client credential is a secret (see
// techpass.Config.ClientCertificate).
func (tc *tenantCredentials) ClientSecret() (string, error) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tc.secret == "" {
		return "", errors.New("no usable client secret loaded")
	}
	return tc.secret, nil
}

func (tc *tenantCredentials) Certificate() (*techpass.Certificate, error) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return tc.cert, nil
}

func (tc *tenantCredentials) APIKey() (string, error) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tc.apiKV == "" {
		return "", errors.New("no usable API key loaded")
	}
	return tc.apiKV, nil
}

// load reads every source and swaps in what changed and is usable. It
// returns the kinds that changed, and an error naming every source that is
// unusable (whose previous value, if any, stays in use).
func (tc *tenantCredentials) load() (changed []credentialKind, err error) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	now := tc.now()
	fresh := map[*credentialSource][]byte{}
	stamps := map[*credentialSource]time.Time{}
	var errs []error
	for _, s := range tc.sources() {
		b, mod, rerr := s.read(tc.getenv, now)
		if rerr != nil {
			rerr = fmt.Errorf("%s (%s): %w", s.kind, s.where(), rerr)
			tc.setProblem(s, rerr)
			errs = append(errs, rerr)
			continue
		}
		stamps[s] = mod
		if !bytes.Equal(b, s.data) {
			fresh[s] = b
		} else {
			s.changed = mod // rewritten with the same content: still dated by the write
			tc.setProblem(s, nil)
		}
	}
	accept := func(s *credentialSource) {
		s.data, s.changed = fresh[s], stamps[s]
		tc.setProblem(s, nil)
		changed = append(changed, s.kind)
	}
	if _, ok := fresh[tc.apiKey]; ok {
		tc.apiKV = string(fresh[tc.apiKey])
		accept(tc.apiKey)
	}
	_, clientChanged := fresh[tc.client]
	keyChanged := false
	if tc.key != nil {
		_, keyChanged = fresh[tc.key]
	}
	if clientChanged || keyChanged {
		value := tc.client.data
		if clientChanged {
			value = fresh[tc.client]
		}
		secret, cert, perr := tc.parseClient(value, fresh)
		if perr != nil {
			// Perhaps half of a rotation (a new certificate, the old key):
			// keep the working credential until the files agree.
			for _, s := range []*credentialSource{tc.client, tc.key} {
				if s != nil && fresh[s] != nil {
					tc.setProblem(s, perr)
				}
			}
			errs = append(errs, perr)
		} else {
			tc.secret, tc.cert = secret, cert
			for _, s := range []*credentialSource{tc.client, tc.key} {
				if s == nil {
					continue
				}
				if fresh[s] != nil {
					accept(s)
				} else {
					tc.setProblem(s, nil) // the other half of the pair works now
				}
			}
		}
	}
	return changed, errors.Join(errs...)
}

// parseClient reads the client credential: a secret, or a PEM certificate
// bundle whose private key is in the bundle or in the key file. Call with
// tc.mu held.
func (tc *tenantCredentials) parseClient(value []byte, fresh map[*credentialSource][]byte) (string, *techpass.Certificate, error) {
	if !bytes.Contains(value, []byte(pemMarker)) {
		if tc.key != nil {
			return "", nil, fmt.Errorf("%s (%s): a private key file is configured, but the credential is not a PEM certificate", kindClient, tc.client.where())
		}
		return string(value), nil, nil
	}
	keyPEM := value
	if tc.key != nil {
		keyPEM = tc.key.data
		if b := fresh[tc.key]; b != nil {
			keyPEM = b
		}
	}
	cert, err := techpass.ParseCertificate(value, keyPEM)
	if err != nil {
		return "", nil, fmt.Errorf("%s (%s): %w", kindClient, tc.client.where(), err)
	}
	return "", cert, nil
}

// setProblem records p for s, logging when it appears on a credential that
// was loaded before (the previous value stays in use) or clears. Call with
// tc.mu held.
func (tc *tenantCredentials) setProblem(s *credentialSource, p error) {
	switch {
	case p != nil && (s.problem == nil || s.problem.Error() != p.Error()):
		if s.data != nil {
			tc.log.Error("TechPass credential changed but is unusable; the previous one is still used",
				"credential", string(s.kind), "source", s.where(), "err", p)
		}
	case p == nil && s.problem != nil && s.data != nil:
		tc.log.Info("TechPass credential usable again", "credential", string(s.kind), "source", s.where())
	}
	s.problem = p
}

// check reloads changed credentials, tells the client, and flags aged ones.
func (tc *tenantCredentials) check() {
	changed, _ := tc.load() // problems are logged by load
	if len(changed) > 0 {
		kinds := make([]string, len(changed))
		for i, k := range changed {
			kinds[i] = string(k)
		}
		tc.log.Info("TechPass credentials reloaded", "credentials", strings.Join(kinds, ", "))
		if c := tc.techpassClient(); c != nil {
			c.CredentialsChanged()
		}
	}
	tc.flagAge()
}

func (tc *tenantCredentials) techpassClient() *techpass.Client {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return tc.tp
}

// flagAge logs, at warn level, each credential that has just become older
// than max_age.
func (tc *tenantCredentials) flagAge() {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	now := tc.now()
	for _, s := range tc.sources() {
		aged := !s.changed.IsZero() && now.Sub(s.changed) > tc.maxAge
		if aged && !s.aged {
			tc.log.Warn("TechPass credential older than credentials.max_age: rotate it",
				"credential", string(s.kind), "source", s.where(), "changed", s.changed, "max_age", tc.maxAge.String())
		}
		s.aged = aged
	}
}

// certificateExpiryWarning is how long before a certificate's expiry it is
// flagged.
const certificateExpiryWarning = 30 * 24 * time.Hour

// warnings words, for /readyz, what an operator should know about the
// credentials: age past max_age, a certificate near or past expiry, a
// changed credential that could not be used. Kinds, sources and dates only,
// never a value.
func (tc *tenantCredentials) warnings() []string {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	now := tc.now()
	var out []string
	for _, s := range tc.sources() {
		if s.problem != nil && s.data != nil {
			out = append(out, fmt.Sprintf("%s changed but is unusable, the previous one is in use: %v", s.kind, s.problem))
		}
		if !s.changed.IsZero() && now.Sub(s.changed) > tc.maxAge {
			out = append(out, fmt.Sprintf("%s (%s) is %d days old, over credentials.max_age (%d days): rotate it",
				s.kind, s.where(), int(now.Sub(s.changed).Hours()/24), int(tc.maxAge.Hours()/24)))
		}
	}
	if c := tc.cert; c != nil {
		switch left := c.NotAfter().Sub(now); {
		case left <= 0:
			out = append(out, fmt.Sprintf("client certificate %s expired on %s", c.Thumbprint(), c.NotAfter().UTC().Format(time.DateOnly)))
		case left < certificateExpiryWarning:
			out = append(out, fmt.Sprintf("client certificate %s expires on %s", c.Thumbprint(), c.NotAfter().UTC().Format(time.DateOnly)))
		}
	}
	return out
}

// upstreamCredentials are the credentials of every tenant runtime, by
// tenant. A rebuilt runtime replaces its tenant's entry.
type upstreamCredentials struct {
	mu      sync.Mutex
	tenants map[string]*tenantCredentials
}

func (u *upstreamCredentials) put(tc *tenantCredentials) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.tenants == nil {
		u.tenants = map[string]*tenantCredentials{}
	}
	u.tenants[tc.tenant] = tc
}

// get returns a tenant's credentials, nil if it has no runtime.
func (u *upstreamCredentials) get(tenant string) *tenantCredentials {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.tenants[tenant]
}

// sameClientCredential reports whether tc and other hold the same client
// credential (secret, or certificate and key).
func (tc *tenantCredentials) sameClientCredential(other *tenantCredentials) bool {
	data := func(c *tenantCredentials) (client, key []byte) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.key != nil {
			key = c.key.data
		}
		return c.client.data, key
	}
	c1, k1 := data(tc)
	c2, k2 := data(other)
	return bytes.Equal(c1, c2) && bytes.Equal(k1, k2)
}

// remove forgets a tenant's credentials (its runtime is gone).
func (u *upstreamCredentials) remove(tenant string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.tenants, tenant)
}

func (u *upstreamCredentials) all() []*tenantCredentials {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := make([]*tenantCredentials, 0, len(u.tenants))
	for _, tc := range u.tenants {
		out = append(out, tc)
	}
	slices.SortFunc(out, func(a, b *tenantCredentials) int { return strings.Compare(a.tenant, b.tenant) })
	return out
}

// credentialsFor loads tenant t's TechPass credentials (tp: its settings,
// the simulator's for a tenant without an upstream). Every credential must
// be usable now: a runtime is not built on a broken one.
func (s *Server) credentialsFor(t tenants.Tenant, tp tenants.TechPass) (*tenantCredentials, error) {
	tc := &tenantCredentials{
		tenant: t.Name, log: s.logger.With("tenant", t.Name), getenv: s.opts.Getenv, now: s.opts.Now,
		maxAge: time.Duration(s.cfg.Credentials.MaxAge),
		client: &credentialSource{kind: kindClient, ref: tp.ClientSecret, open: s.opener(t.Name, "clientSecret", tp.ClientSecret)},
		apiKey: &credentialSource{kind: kindAPIKey, ref: tp.APIKey, open: s.opener(t.Name, "apiKey", tp.APIKey)},
	}
	for _, c := range s.cfg.Tenants {
		if c.Name == t.Name && c.TechPass.ClientKeyFile != "" && tp.ClientSecret.Kind == tenants.CredentialFile && tp.ClientSecret.Ref == c.TechPass.ClientCertificateFile {
			tc.key = &credentialSource{kind: kindKey, ref: tenants.Credential{Kind: tenants.CredentialFile, Ref: c.TechPass.ClientKeyFile}}
		}
	}
	if _, err := tc.load(); err != nil {
		return nil, fmt.Errorf("tenant %s: %w", t.Name, err)
	}
	tc.flagAge()
	return tc, nil
}

// readableCredentials checks, without keeping anything, that tenant t's
// TechPass credentials can be read now: the admin API refuses a change that
// names a missing file or an empty variable instead of storing a tenant no
// runtime can be built for. A tenant on the built-in simulator uses the
// simulator's credentials, so nothing of its own is checked.
func (s *Server) readableCredentials(t tenants.Tenant) error {
	if t.TechPass.APIURL == "" {
		return nil
	}
	tc := &tenantCredentials{
		tenant: t.Name, getenv: s.opts.Getenv, now: s.opts.Now,
		client: &credentialSource{kind: kindClient, ref: t.TechPass.ClientSecret, open: s.opener(t.Name, "clientSecret", t.TechPass.ClientSecret)},
		apiKey: &credentialSource{kind: kindAPIKey, ref: t.TechPass.APIKey, open: s.opener(t.Name, "apiKey", t.TechPass.APIKey)},
	}
	invalid := &tenants.InvalidError{}
	for field, src := range map[string]*credentialSource{"techpass.clientSecret": tc.client, "techpass.apiKey": tc.apiKey} {
		if _, _, err := src.read(tc.getenv, tc.now()); err != nil {
			invalid.Fields = append(invalid.Fields, tenants.FieldError{Field: field, Message: fmt.Sprintf("%s (%s): %v", src.kind, src.where(), err)})
		}
	}
	if len(invalid.Fields) == 0 {
		return nil
	}
	slices.SortFunc(invalid.Fields, func(a, b tenants.FieldError) int { return strings.Compare(a.Field, b.Field) })
	return invalid
}

// opener opens a sealed credential with the key-encryption key; nil when
// c is not stored or no key is configured.
func (s *Server) opener(tenant, field string, c tenants.Credential) func() ([]byte, error) {
	if c.Kind != tenants.CredentialStored || s.box == nil {
		return nil
	}
	box, sealed, place := s.box, c.Sealed, tenants.CredentialPlace(tenant, field)
	return func() ([]byte, error) { return box.Open(sealed, place) }
}

// Reload re-reads every tenant's TechPass credentials and requests a new
// access token with them, as SIGHUP does. In-flight upstream calls finish
// with the credentials they hold.
func (s *Server) Reload(ctx context.Context) {
	s.logger.Info("reloading TechPass credentials")
	for _, tc := range s.creds.all() {
		tc.check()
		if c := tc.techpassClient(); c != nil {
			if err := c.Refresh(ctx); err != nil {
				tc.log.Warn("token request after reload failed; the current token is used while it is valid", "err", err)
			}
		}
	}
}

// startCredentialWatch runs the credential checks and the SIGHUP handler
// until ctx ends; the returned function stops them and waits. The signal
// handler is installed before it returns, so a SIGHUP sent once the server
// serves never stops the process.
func (s *Server) startCredentialWatch(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	started := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		close(started)
		t := time.NewTicker(time.Duration(s.cfg.Credentials.CheckInterval))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				s.Reload(ctx)
			case <-t.C:
				for _, tc := range s.creds.all() {
					tc.check()
				}
			}
		}
	}()
	<-started
	return func() { cancel(); <-done }
}

// upstreamChecks adds the check "upstream:<TENANT>" of every tenant
// runtime to checks.
func (s *Server) upstreamChecks(checks map[string]error) {
	for _, tc := range s.creds.all() {
		if c := tc.techpassClient(); c != nil {
			checks["upstream:"+tc.tenant] = upstreamCheck(c, tc)
		}
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
func upstreamCheck(client *techpass.Client, tc *tenantCredentials) error {
	h := client.Health()
	if h.State != techpass.TokenRefused && h.State != techpass.CredentialUnusable {
		return nil
	}
	detail := strings.Join(slices.Compact(append([]string{h.Problem()}, tc.warnings()...)), "; ")
	if !h.TokenValidUntil.IsZero() {
		return api.Notice(detail)
	}
	return errors.New(detail)
}

// assertionAlg is the configured client assertion algorithm of tenant.
func (s *Server) assertionAlg(tenant string) string {
	for _, c := range s.cfg.Tenants {
		if c.Name == tenant {
			return c.TechPass.ClientAssertionAlg
		}
	}
	return ""
}
