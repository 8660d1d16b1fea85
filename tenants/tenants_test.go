package tenants_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate/boltstore"
	"github.com/groupgate/groupgate/boltstore/bolttest"
	"github.com/groupgate/groupgate/internal/testkit"
	"github.com/groupgate/groupgate/secretbox"
	"github.com/groupgate/groupgate/tenants"
)

// fixture: tenant SHIP (limit 5) with projects MOH (3) and MOE (2).
func fixture(t *testing.T) (*tenants.Admin, *tenants.Authenticator, *boltstore.Store, *testkit.Clock) {
	t.Helper()
	st := bolttest.MustOpen(t)
	clk := testkit.NewClock(time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC))
	box, err := secretbox.New([]byte(strings.Repeat("ab", 32)))
	if err != nil {
		t.Fatal(err)
	}
	admin := tenants.NewAdmin(st, box, clk.Now)
	ctx := context.Background()
	limit := 5
	if _, err := admin.CreateTenant(ctx, tenants.TenantSpec{Name: "ship", GroupLimit: &limit}); err != nil {
		t.Fatal(err)
	}
	three, two := 3, 2
	if _, err := admin.CreateProject(ctx, "SHIP", tenants.ProjectSpec{Name: "moh", GroupQuota: &three}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateProject(ctx, "SHIP", tenants.ProjectSpec{Name: "MOE", GroupQuota: &two}); err != nil {
		t.Fatal(err)
	}
	auth := tenants.NewAuthenticator(tenants.AuthConfig{Store: st, Now: clk.Now, RotationAge: 180 * 24 * time.Hour})
	return admin, auth, st, clk
}

func TestAuthenticateKeys(t *testing.T) {
	admin, auth, _, clk := fixture(t)
	ctx := context.Background()
	good, k, err := admin.IssueKey(ctx, "key:op", tenants.KeySpec{Name: "billing", Role: tenants.RoleProject, Tenant: "SHIP", Project: "MOH"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := auth.Authenticate(ctx, good)
	if err != nil || p.Role != tenants.RoleProject || p.Tenant != "SHIP" || p.Project != "MOH" || p.KeyID != k.ID || len(p.Scopes) != 4 {
		t.Fatalf("good key: %+v, %v", p, err)
	}
	last := "A"
	if strings.HasSuffix(good, "A") {
		last = "B"
	}
	unknown, _ := tenants.NewKey()
	for name, cred := range map[string]string{
		"wrong secret": good[:len(good)-1] + last,
		"unknown id":   unknown,
		"empty":        "",
		"no prefix":    strings.TrimPrefix(good, "gk_"),
		"truncated":    good[:len(good)-1],
		"garbage jwt":  "a.b.c",
	} {
		if _, err := auth.Authenticate(ctx, cred); !errors.Is(err, tenants.ErrUnauthenticated) {
			t.Errorf("%s: %v, want ErrUnauthenticated", name, err)
		}
	}
	// Expiry and revocation take effect on the next request.
	soon, sk, _ := admin.IssueKey(ctx, "key:op", tenants.KeySpec{Name: "temp", Role: tenants.RoleProject, Tenant: "SHIP", Project: "MOH", ExpiresAt: clk.Now().Add(time.Hour)})
	if _, err := auth.Authenticate(ctx, soon); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour)
	if _, err := auth.Authenticate(ctx, soon); !errors.Is(err, tenants.ErrUnauthenticated) {
		t.Errorf("expired key: %v", err)
	}
	if _, err := admin.RevokeKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.Authenticate(ctx, good); !errors.Is(err, tenants.ErrUnauthenticated) {
		t.Errorf("revoked key: %v", err)
	}
	_ = sk
	// A disabled project stops its keys.
	other, _, _ := admin.IssueKey(ctx, "key:op", tenants.KeySpec{Name: "moe", Role: tenants.RoleProject, Tenant: "SHIP", Project: "MOE"})
	yes := true
	if _, err := admin.UpdateProject(ctx, "SHIP", "MOE", tenants.ProjectSpec{Disabled: &yes}); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.Authenticate(ctx, other); !errors.Is(err, tenants.ErrDisabled) {
		t.Errorf("disabled project: %v", err)
	}
}

func TestLastUsedIsFlushedNotWrittenPerRequest(t *testing.T) {
	admin, auth, st, clk := fixture(t)
	ctx := context.Background()
	key, k, _ := admin.IssueKey(ctx, "key:op", tenants.KeySpec{Name: "k", Role: tenants.RoleTenantAdmin, Tenant: "SHIP"})
	if _, err := auth.Authenticate(ctx, key); err != nil {
		t.Fatal(err)
	}
	stored, _ := st.Key(ctx, k.ID)
	if !stored.LastUsedAt.IsZero() {
		t.Fatal("last use written per request")
	}
	if got := auth.LastUsed(stored); !got.Equal(clk.Now()) {
		t.Errorf("LastUsed before flush = %v", got)
	}
	if err := auth.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	stored, _ = st.Key(ctx, k.ID)
	if !stored.LastUsedAt.Equal(clk.Now()) {
		t.Errorf("after flush LastUsedAt = %v", stored.LastUsedAt)
	}
	clk.Advance(181 * 24 * time.Hour)
	if !auth.RotationDue(stored) {
		t.Error("a key older than the rotation age must be flagged")
	}
}

func TestQuotas(t *testing.T) {
	admin, _, _, _ := fixture(t)
	ctx := context.Background()
	one := 1
	if _, err := admin.CreateProject(ctx, "SHIP", tenants.ProjectSpec{Name: "X", GroupQuota: &one}); !errors.Is(err, tenants.ErrQuota) {
		t.Errorf("a project beyond the limit: %v", err)
	}
	p, err := admin.CreateProject(ctx, "SHIP", tenants.ProjectSpec{Name: "SHARED"})
	if err != nil || p.GroupQuota != 0 {
		t.Errorf("a project without a quota shares the tenant's limit: %+v %v", p, err)
	}
	four := 4
	if _, err := admin.UpdateTenant(ctx, "SHIP", tenants.TenantSpec{GroupLimit: &four}); !errors.Is(err, tenants.ErrQuota) {
		t.Errorf("lowering the limit below the quotas: %v", err)
	}
	ten := 10
	if _, err := admin.UpdateTenant(ctx, "SHIP", tenants.TenantSpec{GroupLimit: &ten}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.UpdateProject(ctx, "SHIP", "X", tenants.ProjectSpec{GroupQuota: &one}); !errors.Is(err, tenants.ErrNotFound) {
		t.Errorf("updating a missing project: %v", err)
	}
}

func TestStoredCredentialsAreSealed(t *testing.T) {
	admin, _, st, _ := fixture(t)
	ctx := context.Background()
	url := "https://api.example.test"
	dir, client := "dir", "client"
	_, err := admin.UpdateTenant(ctx, "SHIP", tenants.TenantSpec{APIURL: &url, DirectoryID: &dir, ClientID: &client,
		ClientSecret: &tenants.CredentialInput{Value: "s3cret-canary-value"},
		APIKey:       &tenants.CredentialInput{File: "/run/secrets/api-key"}})
	if err != nil {
		t.Fatal(err)
	}
	tn, _ := st.Tenant(ctx, "SHIP")
	cs := tn.TechPass.ClientSecret
	if cs.Kind != tenants.CredentialStored || len(cs.Sealed) == 0 || strings.Contains(string(cs.Sealed), "s3cret") || !strings.HasPrefix(cs.Fingerprint, "sha256:") {
		t.Errorf("stored credential: %+v", cs)
	}
	if _, err := admin.UpdateTenant(ctx, "SHIP", tenants.TenantSpec{APIKey: &tenants.CredentialInput{File: "a", Env: "B"}}); !errors.Is(err, tenants.ErrInvalid) {
		t.Errorf("two sources at once: %v", err)
	}
	noBox := tenants.NewAdmin(st, nil, nil)
	if _, err := noBox.UpdateTenant(ctx, "SHIP", tenants.TenantSpec{APIKey: &tenants.CredentialInput{Value: "v"}}); !errors.Is(err, tenants.ErrInvalid) {
		t.Errorf("a value without a KEK: %v", err)
	}
}

func TestAuthorize(t *testing.T) {
	proj := tenants.Principal{Role: tenants.RoleProject, KeyID: "k", Tenant: "SHIP", Project: "MOH", Scopes: []tenants.Scope{tenants.GroupsRead}}
	ta := tenants.Principal{Role: tenants.RoleTenantAdmin, KeyID: "a", Tenant: "SHIP"}
	op := tenants.Principal{Role: tenants.RoleOperator, KeyID: "o"}
	cases := []struct {
		name string
		err  error
		ok   bool
	}{
		{"project reads own", tenants.RequireProject(proj, "SHIP", "MOH", tenants.GroupsRead), true},
		{"project writes without scope", tenants.RequireProject(proj, "SHIP", "MOH", tenants.GroupsWrite), false},
		{"project other project", tenants.RequireProject(proj, "SHIP", "MOE", tenants.GroupsRead), false},
		{"project other tenant", tenants.RequireProject(proj, "OTHER", "MOH", tenants.GroupsRead), false},
		{"tenant-admin any project", tenants.RequireProject(ta, "SHIP", "MOE", tenants.GroupsWrite), true},
		{"tenant-admin other tenant", tenants.RequireProject(ta, "OTHER", "MOE", tenants.GroupsRead), false},
		{"operator never touches groups", tenants.RequireProject(op, "SHIP", "MOH", tenants.GroupsRead), false},
		{"tenant-admin administers own", tenants.RequireTenantAdmin(ta, "SHIP"), true},
		{"tenant-admin not other", tenants.RequireTenantAdmin(ta, "OTHER"), false},
		{"operator administers all", tenants.RequireTenantAdmin(op, "OTHER"), true},
		{"project administers nothing", tenants.RequireTenantAdmin(proj, "SHIP"), false},
		{"only operators operate", tenants.RequireOperator(ta), false},
		{"tenant-admin issues project key", tenants.RequireIssue(ta, tenants.Key{Role: tenants.RoleProject, Tenant: "SHIP"}), true},
		{"tenant-admin no operator key", tenants.RequireIssue(ta, tenants.Key{Role: tenants.RoleOperator}), false},
		{"tenant-admin no other tenant", tenants.RequireIssue(ta, tenants.Key{Role: tenants.RoleProject, Tenant: "OTHER"}), false},
		{"operator issues operator key", tenants.RequireIssue(op, tenants.Key{Role: tenants.RoleOperator}), true},
		{"zero principal", tenants.RequireProject(tenants.Principal{}, "", "", tenants.GroupsRead), false},
	}
	for _, c := range cases {
		if (c.err == nil) != c.ok || (c.err != nil && !errors.Is(c.err, tenants.ErrForbidden)) {
			t.Errorf("%s: %v", c.name, c.err)
		}
	}
}

func TestKeyDefinitions(t *testing.T) {
	now := time.Now()
	for _, k := range []tenants.Key{
		{Name: "", Role: tenants.RoleProject, Tenant: "S", Project: "P"},
		{Name: "x", Role: "root"},
		{Name: "x", Role: tenants.RoleOperator, Tenant: "SHIP"},
		{Name: "x", Role: tenants.RoleTenantAdmin},
		{Name: "x", Role: tenants.RoleProject, Tenant: "SHIP"},
		{Name: "x", Role: tenants.RoleProject, Tenant: "SHIP", Project: "P", Scopes: []tenants.Scope{"groups:admin"}},
		{Name: "x", Role: tenants.RoleProject, Tenant: "SHIP", Project: "P", CreatedAt: now, ExpiresAt: now.Add(-time.Second)},
	} {
		if err := k.Validate(); !errors.Is(err, tenants.ErrInvalid) {
			t.Errorf("%+v accepted: %v", k, err)
		}
	}
}

func TestNewKeyFormat(t *testing.T) {
	seen := map[string]bool{}
	for range 50 {
		key, stored := tenants.NewKey()
		if !strings.HasPrefix(key, "gk_"+stored.ID+"_") || len(key) != len("gk_")+20+1+43 {
			t.Fatalf("key %q has the wrong shape", key)
		}
		if tenants.KeyID(key) != stored.ID || seen[key] {
			t.Fatalf("key id or uniqueness broken for %q", key)
		}
		seen[key] = true
		h, err := tenants.ParseHash(tenants.HashString(stored.Hash))
		if err != nil || h != stored.Hash {
			t.Fatalf("hash round trip: %v", err)
		}
	}
	for _, bad := range []string{"", "sha256:", "sha256:zz", "md5:" + strings.Repeat("0", 64), "sha256:" + strings.Repeat("0", 63)} {
		if _, err := tenants.ParseHash(bad); !errors.Is(err, tenants.ErrInvalid) {
			t.Errorf("ParseHash(%q) = %v", bad, err)
		}
	}
}

// FuzzAuthenticate: no input makes Authenticate panic or accept anything but
// the one issued key.
func FuzzAuthenticate(f *testing.F) {
	st := bolttest.MustOpen(f)
	admin := tenants.NewAdmin(st, nil, nil)
	ctx := context.Background()
	if _, err := admin.CreateTenant(ctx, tenants.TenantSpec{Name: "SHIP"}); err != nil {
		f.Fatal(err)
	}
	if _, err := admin.CreateProject(ctx, "SHIP", tenants.ProjectSpec{Name: "MOH"}); err != nil {
		f.Fatal(err)
	}
	key, stored, err := admin.IssueKey(ctx, "key:op", tenants.KeySpec{Name: "k", Role: tenants.RoleProject, Tenant: "SHIP", Project: "MOH"})
	if err != nil {
		f.Fatal(err)
	}
	auth := tenants.NewAuthenticator(tenants.AuthConfig{Store: st})
	f.Add(key)
	f.Add("gk_" + stored.ID + "_" + strings.Repeat("A", 43))
	f.Add("gk__")
	f.Add("Bearer " + key)
	f.Add("eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := auth.Authenticate(ctx, s)
		if (err == nil) != (s == key) {
			t.Fatalf("Authenticate(%q) = %+v, %v", s, p, err)
		}
	})
}

// conflictOnce is a store whose first CreateKey reports the id taken, as a
// collision of two random ids would.
type conflictOnce struct {
	tenants.Store
	refused []string
}

func (c *conflictOnce) CreateKey(ctx context.Context, k tenants.Key) error {
	if len(c.refused) == 0 {
		c.refused = append(c.refused, k.ID)
		return tenants.ErrConflict
	}
	return c.Store.CreateKey(ctx, k)
}

// TestIssueKeyRetriesATakenID checks a key id collision is not the caller's
// 409: the key is issued under a fresh id, and the key returned matches it.
func TestIssueKeyRetriesATakenID(t *testing.T) {
	store := &conflictOnce{Store: newMemStore()}
	admin := tenants.NewAdmin(store, nil, nil)
	plain, k, err := admin.IssueKey(context.Background(), "operator", tenants.KeySpec{Name: "ops", Role: tenants.RoleOperator})
	if err != nil {
		t.Fatalf("IssueKey: %v", err)
	}
	if len(store.refused) != 1 || k.ID == store.refused[0] {
		t.Fatalf("issued id %s, refused %v: want a fresh id after the conflict", k.ID, store.refused)
	}
	if !strings.HasPrefix(plain, "gk_"+k.ID+"_") || k.Hash != sha256.Sum256([]byte(plain)) {
		t.Fatalf("the key returned does not match its stored form %s", k.ID)
	}
	if _, err := store.Key(context.Background(), k.ID); err != nil {
		t.Fatalf("issued key not stored: %v", err)
	}
}

// TestAuthenticatorProject: Project answers from the snapshot credentials
// are checked against, follows a change at once, and reports an unknown
// project as ErrNotFound.
func TestAuthenticatorProject(t *testing.T) {
	st := bolttest.MustOpen(t)
	admin := tenants.NewAdmin(st, nil, nil)
	ctx := t.Context()
	if _, err := admin.CreateTenant(ctx, tenants.TenantSpec{Name: "SHIP"}); err != nil {
		t.Fatal(err)
	}
	quota := 3
	if _, err := admin.CreateProject(ctx, "SHIP", tenants.ProjectSpec{Name: "MOH", GroupQuota: &quota}); err != nil {
		t.Fatal(err)
	}
	auth := tenants.NewAuthenticator(tenants.AuthConfig{Store: st})
	if p, err := auth.Project(ctx, "SHIP", "MOH"); err != nil || p.GroupQuota != 3 {
		t.Fatalf("Project = %+v, %v; want the quota 3", p, err)
	}
	quota = 5
	if _, err := admin.UpdateProject(ctx, "SHIP", "MOH", tenants.ProjectSpec{GroupQuota: &quota}); err != nil {
		t.Fatal(err)
	}
	if p, err := auth.Project(ctx, "SHIP", "MOH"); err != nil || p.GroupQuota != 5 {
		t.Fatalf("Project after the change = %+v, %v; want the quota 5", p, err)
	}
	if _, err := auth.Project(ctx, "SHIP", "NOPE"); !errors.Is(err, tenants.ErrNotFound) {
		t.Fatalf("an unknown project: %v, want ErrNotFound", err)
	}
}
