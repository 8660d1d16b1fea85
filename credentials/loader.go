package credentials

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/groupgate/groupgate/secretbox"
	"github.com/groupgate/groupgate/tenants"
)

// Loader builds credential sources and tenants' credentials with the
// process's dependencies. The zero value reads the environment through
// os.Getenv and cannot open sealed values.
type Loader struct {
	// Getenv reads variables; defaults to os.Getenv.
	Getenv func(string) string
	// Now defaults to time.Now.
	Now func() time.Time
	// Box opens credentials sealed in the store; nil when no
	// key-encryption key is configured (they cannot be read then).
	Box *secretbox.Box
	// MaxAge flags credentials older than this (credentials.max_age).
	MaxAge time.Duration
	// Logger defaults to discarding.
	Logger *slog.Logger
}

func (l *Loader) getenv(k string) string {
	if l.Getenv == nil {
		return os.Getenv(k)
	}
	return l.Getenv(k)
}

func (l *Loader) now() time.Time {
	if l.Now == nil {
		return time.Now()
	}
	return l.Now()
}

func (l *Loader) logger() *slog.Logger {
	if l.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l.Logger
}

// Source returns where credential ref of tenant is read from; field is its
// name in the tenant's record (clientSecret, apiKey, webhookSecret...),
// which a sealed value is bound to.
func (l *Loader) Source(kind Kind, tenant, field string, ref tenants.Credential) *Source {
	s := &Source{kind: kind, ref: ref}
	if ref.Kind == tenants.CredentialStored && l.Box != nil {
		box, sealed, place := l.Box, ref.Sealed, tenants.CredentialPlace(tenant, field)
		s.open = func() ([]byte, error) { return box.Open(sealed, place) }
	}
	return s
}

// ReadSource reads s now (see Source.Read) with the loader's environment
// and clock.
func (l *Loader) ReadSource(s *Source) ([]byte, time.Time, error) {
	return s.Read(l.getenv, l.now())
}

// Load loads tenant's TechPass credentials from tp (its settings, or the
// simulator's for a tenant without an upstream); keyFile, if set, is the
// client certificate's private key in a file of its own. Every credential
// must be usable now: a runtime is not built on a broken one.
func (l *Loader) Load(tenant string, tp tenants.TechPass, keyFile string) (*Tenant, error) {
	tc := &Tenant{
		tenant: tenant, log: l.logger().With("tenant", tenant), getenv: l.getenv, now: l.now,
		maxAge: l.MaxAge,
		client: l.Source(KindClient, tenant, "clientSecret", tp.ClientSecret),
		apiKey: l.Source(KindAPIKey, tenant, "apiKey", tp.APIKey),
	}
	if keyFile != "" {
		tc.key = &Source{kind: KindKey, ref: tenants.Credential{Kind: tenants.CredentialFile, Ref: keyFile}}
	}
	if _, err := tc.load(); err != nil {
		return nil, fmt.Errorf("tenant %s: %w", tenant, err)
	}
	tc.flagAge()
	return tc, nil
}

// Readable checks, without keeping anything, that tenant t's TechPass
// credentials can be read now: the admin API refuses a change that names a
// missing file or an empty variable instead of storing a tenant no runtime
// can be built for. A tenant on the built-in simulator uses the simulator's
// credentials, so nothing of its own is checked. The error is a
// *tenants.InvalidError naming each unreadable field.
func (l *Loader) Readable(t tenants.Tenant) error {
	if t.TechPass.APIURL == "" {
		return nil
	}
	invalid := &tenants.InvalidError{}
	for field, src := range map[string]*Source{
		"techpass.clientSecret": l.Source(KindClient, t.Name, "clientSecret", t.TechPass.ClientSecret),
		"techpass.apiKey":       l.Source(KindAPIKey, t.Name, "apiKey", t.TechPass.APIKey),
	} {
		if _, _, err := l.ReadSource(src); err != nil {
			invalid.Fields = append(invalid.Fields, tenants.FieldError{Field: field, Message: fmt.Sprintf("%s (%s): %v", src.kind, src.Where(), err)})
		}
	}
	if len(invalid.Fields) == 0 {
		return nil
	}
	slices.SortFunc(invalid.Fields, func(a, b tenants.FieldError) int { return strings.Compare(a.Field, b.Field) })
	return invalid
}

// Watch calls check every `every` and reload at each SIGHUP until ctx ends;
// the returned function stops it and waits. The signal handler is installed
// before Watch returns, so a SIGHUP sent once the server serves never stops
// the process.
func Watch(ctx context.Context, every time.Duration, check func(), reload func(context.Context)) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	started := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		close(started)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				reload(ctx)
			case <-t.C:
				check()
			}
		}
	}()
	<-started
	return func() { cancel(); <-done }
}
