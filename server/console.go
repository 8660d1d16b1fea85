package server

import (
	"context"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/groupgate/groupgate/console"
	"github.com/groupgate/groupgate/credentials"
	"github.com/groupgate/groupgate/tenants"
)

// mountConsole serves the web console at /console. It sends every read
// and write to e itself, in process, as the session's principal, so the
// console enforces the API's policy and nothing else.
func (s *Server) mountConsole(e *echo.Echo) error {
	c, err := console.New(console.Config{
		API: e, Auth: s.auth, Pending: s.store.pending, CredentialAges: s.credentialAges,
		IdleTimeout: time.Duration(s.cfg.Console.IdleTimeout), MaxLifetime: time.Duration(s.cfg.Console.MaxLifetime),
		Secure: s.certs != nil || s.cfg.Console.SecureCookies, Now: s.opts.Now, Logger: s.logger,
	})
	if err != nil {
		return err
	}
	s.console = c
	h := echo.WrapHandler(c)
	e.Any(console.Prefix, h)
	e.Any(console.Prefix+"/*", h)
	return nil
}

// consoleCredentialNames are the console's names of the credential kinds.
var consoleCredentialNames = map[credentials.Kind]string{
	credentials.KindClient: console.CredentialClient,
	credentials.KindKey:    console.CredentialKey,
	credentials.KindAPIKey: console.CredentialAPIKey,
}

// credentialAges returns when each TechPass credential of tenant last
// changed, as the credential loader saw it, by the console's names.
func (s *Server) credentialAges(tenant string) map[string]time.Time {
	rt := s.runtimes.get(tenant)
	if rt == nil {
		return nil
	}
	out := map[string]time.Time{}
	for kind, at := range rt.creds.Ages() {
		if name, ok := consoleCredentialNames[kind]; ok {
			out[name] = at
		}
	}
	return out
}

// consoleAuth authenticates API requests: the console's in-process
// requests by the session principal in their context (which a request from
// the network cannot carry; the console resumed it against this same
// authenticator just before), all others by their bearer credential.
type consoleAuth struct{ *tenants.Authenticator }

func (a consoleAuth) Authenticate(ctx context.Context, credential string) (tenants.Principal, error) {
	if p, ok := console.PrincipalFrom(ctx); ok {
		return p, nil
	}
	return a.Authenticator.Authenticate(ctx, credential)
}
