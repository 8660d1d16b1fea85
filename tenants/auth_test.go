package tenants_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/groupgate/groupgate/boltstore"
	"github.com/groupgate/groupgate/boltstore/bolttest"
	"github.com/groupgate/groupgate/internal/testkit"
	"github.com/groupgate/groupgate/tenants"
)

// flakyStore is the real store, with Generation and Keys failing while
// their error is set: a shared database the service cannot reach.
type flakyStore struct {
	*boltstore.Store
	mu      sync.Mutex
	genErr  error
	keysErr error
}

var _ tenants.Store = (*flakyStore)(nil)

func (f *flakyStore) set(genErr, keysErr error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.genErr, f.keysErr = genErr, keysErr
}

func (f *flakyStore) Generation(ctx context.Context) (uint64, error) {
	f.mu.Lock()
	err := f.genErr
	f.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return f.Store.Generation(ctx)
}

func (f *flakyStore) Keys(ctx context.Context, tenant string) ([]tenants.Key, error) {
	f.mu.Lock()
	err := f.keysErr
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return f.Store.Keys(ctx, tenant)
}

var errUnreachable = errors.New("database unreachable")

// flakyFixture returns an admin over a real store, an authenticator over the
// same store seen through flaky, the clock and the authenticator's log.
func flakyFixture(t *testing.T, maxStale time.Duration, operators ...tenants.Key) (*tenants.Admin, *tenants.Authenticator, *flakyStore, *testkit.Clock, *bytes.Buffer) {
	t.Helper()
	st := bolttest.MustOpen(t)
	clk := testkit.NewClock(time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC))
	admin := tenants.NewAdmin(st, nil, clk.Now)
	if _, err := admin.CreateTenant(t.Context(), tenants.TenantSpec{Name: "SHIP"}); err != nil {
		t.Fatal(err)
	}
	flaky := &flakyStore{Store: st}
	var log bytes.Buffer
	auth := tenants.NewAuthenticator(tenants.AuthConfig{Store: flaky, Now: clk.Now, MaxStale: maxStale, Operators: operators,
		Logger: slog.New(slog.NewTextHandler(&log, nil))})
	return admin, auth, flaky, clk, &log
}

// TestAuthenticateWhenGenerationFails walks a timeline: while the store
// cannot tell whether the snapshot is current, the snapshot confirmed last
// serves for MaxStale (a revocation committed meanwhile is missed that
// long), then every stored credential is refused with the store's error
// (not ErrUnauthenticated: the key is not wrong) until the store answers;
// bootstrap operator keys keep working; the log says when each begins.
func TestAuthenticateWhenGenerationFails(t *testing.T) {
	opKey, op := tenants.NewKey()
	op.Role, op.Name = tenants.RoleOperator, "bootstrap"
	admin, auth, flaky, clk, log := flakyFixture(t, 30*time.Second, op)
	ctx := t.Context()
	key, k, err := admin.IssueKey(ctx, "key:op", tenants.KeySpec{Name: "ci", Role: tenants.RoleTenantAdmin, Tenant: "SHIP"})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name    string
		advance time.Duration
		act     func()
		// want is nil (accepted), errUnreachable (refused: the store
		// failed) or tenants.ErrUnauthenticated.
		want error
		log  string
	}{
		{"store answers", 0, nil, nil, ""},
		// A confirmation, not only a load, refreshes the snapshot.
		{"an hour later, store answers", time.Hour, nil, nil, ""},
		{"store fails, key revoked meanwhile", 10 * time.Second, func() {
			flaky.set(errUnreachable, nil)
			if _, err := admin.RevokeKey(ctx, k.ID); err != nil {
				t.Fatal(err)
			}
		}, nil, "level=WARN msg=\"the credential store failed; checking credentials against the last snapshot"},
		{"at MaxStale", 20 * time.Second, nil, nil, ""},
		{"past MaxStale", time.Nanosecond, nil, errUnreachable, "level=ERROR msg=\"the credential store has failed for longer than max_stale"},
		{"still failing", time.Minute, nil, errUnreachable, ""},
		{"store answers again: the revocation applies", time.Second, func() { flaky.set(nil, nil) }, tenants.ErrUnauthenticated,
			"level=INFO msg=\"the credential store answers again"},
	}
	for _, s := range steps {
		clk.Advance(s.advance)
		if s.act != nil {
			s.act()
		}
		log.Reset()
		_, err := auth.Authenticate(ctx, key)
		switch {
		case s.want == nil && err != nil:
			t.Fatalf("%s: Authenticate = %v, want accepted", s.name, err)
		case s.want != nil && !errors.Is(err, s.want):
			t.Fatalf("%s: Authenticate = %v, want %v", s.name, err, s.want)
		case errors.Is(s.want, errUnreachable) && errors.Is(err, tenants.ErrUnauthenticated):
			t.Fatalf("%s: Authenticate = %v; a store failure must not read as a bad key", s.name, err)
		}
		if s.log != "" && !strings.Contains(log.String(), s.log) {
			t.Fatalf("%s: log %q, want %q", s.name, log.String(), s.log)
		}
		if s.log == "" && strings.Contains(log.String(), "credential store") {
			t.Fatalf("%s: logged again: %q", s.name, log.String())
		}
		if p, err := auth.Authenticate(ctx, opKey); err != nil || p.Role != tenants.RoleOperator {
			t.Fatalf("%s: bootstrap operator key: %+v, %v", s.name, p, err)
		}
	}
}

// TestAuthenticateWhenReloadFails: a failing reload (Generation moved, Keys
// fails) is treated as a failing Generation: the last snapshot serves for
// MaxStale, then credentials are refused.
func TestAuthenticateWhenReloadFails(t *testing.T) {
	admin, auth, flaky, clk, _ := flakyFixture(t, 30*time.Second)
	ctx := t.Context()
	key, _, err := admin.IssueKey(ctx, "key:op", tenants.KeySpec{Name: "ci", Role: tenants.RoleTenantAdmin, Tenant: "SHIP"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auth.Authenticate(ctx, key); err != nil {
		t.Fatal(err)
	}
	flaky.set(nil, errUnreachable)
	// A new key moves the generation; the reload cannot read it.
	other, _, err := admin.IssueKey(ctx, "key:op", tenants.KeySpec{Name: "new", Role: tenants.RoleTenantAdmin, Tenant: "SHIP"})
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(30 * time.Second)
	if _, err := auth.Authenticate(ctx, key); err != nil {
		t.Fatalf("within MaxStale: %v", err)
	}
	if _, err := auth.Authenticate(ctx, other); !errors.Is(err, tenants.ErrUnauthenticated) {
		t.Fatalf("a key the last snapshot lacks: %v, want ErrUnauthenticated", err)
	}
	clk.Advance(time.Second)
	if _, err := auth.Authenticate(ctx, key); !errors.Is(err, errUnreachable) || errors.Is(err, tenants.ErrUnauthenticated) {
		t.Fatalf("past MaxStale: %v, want the store's error", err)
	}
	flaky.set(nil, nil)
	if _, err := auth.Authenticate(ctx, other); err != nil {
		t.Fatalf("store answers again: %v", err)
	}
}

// TestAuthenticateStrictOrUnloaded: with a negative MaxStale no unconfirmed
// snapshot is used; with no snapshot loaded yet there is nothing to use.
func TestAuthenticateStrictOrUnloaded(t *testing.T) {
	for name, c := range map[string]struct {
		maxStale  time.Duration
		loadFirst bool
	}{
		"strict":   {-1, true},
		"unloaded": {time.Hour, false},
	} {
		t.Run(name, func(t *testing.T) {
			admin, auth, flaky, _, _ := flakyFixture(t, c.maxStale)
			key, _, err := admin.IssueKey(t.Context(), "key:op", tenants.KeySpec{Name: "ci", Role: tenants.RoleTenantAdmin, Tenant: "SHIP"})
			if err != nil {
				t.Fatal(err)
			}
			if c.loadFirst {
				if _, err := auth.Authenticate(t.Context(), key); err != nil {
					t.Fatal(err)
				}
			}
			flaky.set(errUnreachable, nil)
			if _, err := auth.Authenticate(t.Context(), key); !errors.Is(err, errUnreachable) || errors.Is(err, tenants.ErrUnauthenticated) {
				t.Fatalf("Authenticate = %v, want the store's error", err)
			}
		})
	}
}
