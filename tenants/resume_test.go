package tenants_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/groupgate/groupgate/tenants"
)

// TestResume: a key resumed by id gets the principal Authenticate gives,
// and stops resuming once it expires, is revoked, or its tenant or project
// is disabled.
func TestResume(t *testing.T) {
	admin, auth, _, clk := fixture(t)
	ctx := context.Background()
	key, k, err := admin.IssueKey(ctx, "key:op", tenants.KeySpec{Name: "console", Role: tenants.RoleProject, Tenant: "SHIP", Project: "MOH", ExpiresAt: clk.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	want, err := auth.Authenticate(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	got, err := auth.Resume(ctx, k.ID)
	if err != nil || got.KeyID != want.KeyID || got.Role != want.Role || got.Tenant != want.Tenant || got.Project != want.Project || len(got.Scopes) != len(want.Scopes) {
		t.Fatalf("Resume = %+v, %v; want %+v", got, err, want)
	}
	if _, err := auth.Resume(ctx, "0123456789abcdef0123"); !errors.Is(err, tenants.ErrUnauthenticated) {
		t.Errorf("unknown id: %v", err)
	}
	clk.Advance(time.Hour)
	if _, err := auth.Resume(ctx, k.ID); !errors.Is(err, tenants.ErrUnauthenticated) {
		t.Errorf("expired key: %v", err)
	}

	_, revoked, _ := admin.IssueKey(ctx, "key:op", tenants.KeySpec{Name: "r", Role: tenants.RoleTenantAdmin, Tenant: "SHIP"})
	if _, err := auth.Resume(ctx, revoked.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.RevokeKey(ctx, revoked.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.Resume(ctx, revoked.ID); !errors.Is(err, tenants.ErrUnauthenticated) {
		t.Errorf("revoked key: %v", err)
	}

	_, admin2, _ := admin.IssueKey(ctx, "key:op", tenants.KeySpec{Name: "a", Role: tenants.RoleTenantAdmin, Tenant: "SHIP"})
	yes := true
	if _, err := admin.UpdateTenant(ctx, "SHIP", tenants.TenantSpec{Disabled: &yes}); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.Resume(ctx, admin2.ID); !errors.Is(err, tenants.ErrDisabled) {
		t.Errorf("disabled tenant: %v", err)
	}
}

// TestPeek: Peek checks a key as Resume does but records no use of it;
// Resume does.
func TestPeek(t *testing.T) {
	admin, auth, _, clk := fixture(t)
	ctx := context.Background()
	_, k, err := admin.IssueKey(ctx, "key:op", tenants.KeySpec{Name: "console", Role: tenants.RoleProject, Tenant: "SHIP", Project: "MOH"})
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	if p, err := auth.Peek(ctx, k.ID); err != nil || p.KeyID != k.ID {
		t.Fatalf("Peek = %+v, %v", p, err)
	}
	if used := auth.LastUsed(k); !used.IsZero() {
		t.Errorf("Peek recorded a use at %v", used)
	}
	if _, err := auth.Resume(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if used := auth.LastUsed(k); !used.Equal(clk.Now()) {
		t.Errorf("Resume recorded a use at %v, want %v", used, clk.Now())
	}
	if _, err := admin.RevokeKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.Peek(ctx, k.ID); !errors.Is(err, tenants.ErrUnauthenticated) {
		t.Errorf("Peek of a revoked key: %v", err)
	}
}
