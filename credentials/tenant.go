package credentials

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/groupgate/groupgate/techpass"
)

// Tenant holds one tenant's TechPass credentials in memory and keeps them
// current. Build one with Loader.Load. It is safe for concurrent use.
type Tenant struct {
	tenant string
	log    *slog.Logger
	getenv func(string) string
	now    func() time.Time
	maxAge time.Duration

	client, key, apiKey *Source // key is nil unless a key file is configured

	mu     sync.Mutex
	secret string                // the client secret, when the client credential is one
	cert   *techpass.Certificate // the certificate, when it is a bundle
	apiKV  string
	tp     *techpass.Client
}

// Name returns the tenant whose credentials these are.
func (tc *Tenant) Name() string { return tc.tenant }

// Ages returns when each of the tenant's credentials last changed, by
// kind, for the credential-age metric and the console.
func (tc *Tenant) Ages() map[Kind]time.Time {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	out := map[Kind]time.Time{}
	for _, s := range tc.sources() {
		if !s.changed.IsZero() {
			out[s.kind] = s.changed
		}
	}
	return out
}

func (tc *Tenant) sources() []*Source {
	out := []*Source{tc.client}
	if tc.key != nil {
		out = append(out, tc.key)
	}
	return append(out, tc.apiKey)
}

// ClientSecret, Certificate and APIKey are the techpass credential
// functions: they return the values in memory. Certificate returns nil,
// nil while the client credential is a secret (see
// techpass.Config.ClientCertificate).
func (tc *Tenant) ClientSecret() (string, error) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tc.secret == "" {
		return "", errors.New("no usable client secret loaded")
	}
	return tc.secret, nil
}

func (tc *Tenant) Certificate() (*techpass.Certificate, error) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return tc.cert, nil
}

func (tc *Tenant) APIKey() (string, error) {
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
func (tc *Tenant) load() (changed []Kind, err error) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	now := tc.now()
	fresh := map[*Source][]byte{}
	stamps := map[*Source]time.Time{}
	var errs []error
	for _, s := range tc.sources() {
		b, mod, rerr := s.Read(tc.getenv, now)
		if rerr != nil {
			rerr = fmt.Errorf("%s (%s): %w", s.kind, s.Where(), rerr)
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
	accept := func(s *Source) {
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
			for _, s := range []*Source{tc.client, tc.key} {
				if s != nil && fresh[s] != nil {
					tc.setProblem(s, perr)
				}
			}
			errs = append(errs, perr)
		} else {
			tc.secret, tc.cert = secret, cert
			for _, s := range []*Source{tc.client, tc.key} {
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
func (tc *Tenant) parseClient(value []byte, fresh map[*Source][]byte) (string, *techpass.Certificate, error) {
	if !bytes.Contains(value, []byte(pemMarker)) {
		if tc.key != nil {
			return "", nil, fmt.Errorf("%s (%s): a private key file is configured, but the credential is not a PEM certificate", KindClient, tc.client.Where())
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
		return "", nil, fmt.Errorf("%s (%s): %w", KindClient, tc.client.Where(), err)
	}
	return "", cert, nil
}

// setProblem records p for s, logging when it appears on a credential that
// was loaded before (the previous value stays in use) or clears. Call with
// tc.mu held.
func (tc *Tenant) setProblem(s *Source, p error) {
	switch {
	case p != nil && (s.problem == nil || s.problem.Error() != p.Error()):
		if s.data != nil {
			tc.log.Error("TechPass credential changed but is unusable; the previous one is still used",
				"credential", string(s.kind), "source", s.Where(), "err", p)
		}
	case p == nil && s.problem != nil && s.data != nil:
		tc.log.Info("TechPass credential usable again", "credential", string(s.kind), "source", s.Where())
	}
	s.problem = p
}

// Check reloads changed credentials, tells the attached client, and flags
// aged ones. Problems are logged, not returned.
func (tc *Tenant) Check() {
	changed, _ := tc.load() // problems are logged by load
	if len(changed) > 0 {
		kinds := make([]string, len(changed))
		for i, k := range changed {
			kinds[i] = string(k)
		}
		tc.log.Info("TechPass credentials reloaded", "credentials", strings.Join(kinds, ", "))
		if c := tc.Client(); c != nil {
			c.CredentialsChanged()
		}
	}
	tc.flagAge()
}

// Reload checks the credentials, as Check does, and requests a new access
// token with them (SIGHUP). In-flight upstream calls finish with the
// credentials they hold.
func (tc *Tenant) Reload(ctx context.Context) {
	tc.Check()
	if c := tc.Client(); c != nil {
		if err := c.Refresh(ctx); err != nil {
			tc.log.Warn("token request after reload failed; the current token is used while it is valid", "err", err)
		}
	}
}

// Attach names the TechPass client that uses these credentials, so a
// rotation tells it.
func (tc *Tenant) Attach(c *techpass.Client) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	tc.tp = c
}

// Client returns the attached TechPass client, nil before Attach.
func (tc *Tenant) Client() *techpass.Client {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return tc.tp
}

// flagAge logs, at warn level, each credential that has just become older
// than max_age.
func (tc *Tenant) flagAge() {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	now := tc.now()
	for _, s := range tc.sources() {
		aged := !s.changed.IsZero() && now.Sub(s.changed) > tc.maxAge
		if aged && !s.aged {
			tc.log.Warn("TechPass credential older than credentials.max_age: rotate it",
				"credential", string(s.kind), "source", s.Where(), "changed", s.changed, "max_age", tc.maxAge.String())
		}
		s.aged = aged
	}
}

// certificateExpiryWarning is how long before a certificate's expiry it is
// flagged.
const certificateExpiryWarning = 30 * 24 * time.Hour

// Warnings words, for /readyz, what an operator should know about the
// credentials: age past max_age, a certificate near or past expiry, a
// changed credential that could not be used. Kinds, sources and dates only,
// never a value.
func (tc *Tenant) Warnings() []string {
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
				s.kind, s.Where(), int(now.Sub(s.changed).Hours()/24), int(tc.maxAge.Hours()/24)))
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

// SameClientCredential reports whether tc and other hold the same client
// credential (secret, or certificate and key).
func (tc *Tenant) SameClientCredential(other *Tenant) bool {
	data := func(c *Tenant) (client, key []byte) {
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
