package server

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/groupgate/groupgate/api"
	"github.com/groupgate/groupgate/jwtauth"
	"github.com/groupgate/groupgate/tenants"
)

// staleIdentities are the projects whose stored identity provider no
// longer passes validation: registered under an older release that
// accepted, say, a JWKS URL over http or on a private address. Every JWT
// of such a project is refused with a plain 401, so the operator is told
// at start-up (a warning per project) and by /readyz until it is fixed.
type staleIdentities struct {
	validate func(tenants.IdentityProvider) error

	mu       sync.Mutex
	projects map[[2]string]bool // tenant, project
}

// find logs and remembers every stored identity provider that validate
// refuses.
func (si *staleIdentities) find(ctx context.Context, s *Server) error {
	ts, err := s.store.Tenants(ctx)
	if err != nil {
		return fmt.Errorf("check stored identity providers: %w", err)
	}
	si.mu.Lock()
	defer si.mu.Unlock()
	si.projects = map[[2]string]bool{}
	for _, t := range ts {
		ps, err := s.store.Projects(ctx, t.Name)
		if err != nil {
			return fmt.Errorf("check stored identity providers of %s: %w", t.Name, err)
		}
		for _, p := range ps {
			if p.Identity == nil {
				continue
			}
			if problems := identityProblems(si.validate(*p.Identity)); problems != "" {
				s.logger.Warn("stored identity provider no longer valid: its JWTs are refused until it is fixed (give the project a valid identity)",
					"tenant", t.Name, "project", p.Name, "problems", problems)
				si.projects[[2]string{t.Name, p.Name}] = true
			}
		}
	}
	return nil
}

// checks adds a readiness notice naming the projects whose identity
// provider is still invalid: each is read again, so a fix (or the
// project's removal) clears it.
func (si *staleIdentities) checks(ctx context.Context, s *Server, checks map[string]error) {
	si.mu.Lock()
	defer si.mu.Unlock()
	var notes []string
	for key := range si.projects {
		p, err := s.store.Project(ctx, key[0], key[1])
		if errors.Is(err, tenants.ErrNotFound) {
			delete(si.projects, key)
			continue
		}
		if err != nil {
			continue // the store check reports a failing store
		}
		problems := ""
		if p.Identity != nil {
			problems = identityProblems(si.validate(*p.Identity))
		}
		if problems == "" {
			delete(si.projects, key)
			continue
		}
		notes = append(notes, key[0]+"/"+key[1]+": "+problems)
	}
	if len(notes) > 0 {
		sort.Strings(notes)
		checks["identity"] = api.Notice("identity providers that no longer validate, whose JWTs are refused: " + strings.Join(notes, "; "))
	}
}

// identityProblems words a validation error without a secret: the
// validator's messages quote no key, and name a JWKS URL's problem, not
// the URL.
func identityProblems(err error) string {
	var pe *jwtauth.ProviderError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &pe):
		return strings.Join(pe.Problems, "; ")
	default:
		return "invalid"
	}
}
