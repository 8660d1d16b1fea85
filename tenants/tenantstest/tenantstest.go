// Package tenantstest is the conformance suite for tenants.Store
// implementations.
//
// Every backend runs the same cases, so what tenants.Store promises is
// specified once: lookups and lists in a stated order, ErrNotFound and
// ErrConflict, updates that apply whole or not at all, a generation that
// moves with every committed change (and only then) so readers may cache,
// values copied in and out, and no update lost between concurrent writers.
// A backend runs it with a ten-line test:
//
//	func TestTenantsStore(t *testing.T) {
//		tenantstest.RunStoreTests(t, func(t *testing.T) tenants.Store { return bolttest.MustOpen(t) })
//	}
//
//	func TestTenantsStoreConcurrency(t *testing.T) {
//		tenantstest.RunConcurrencyTests(t, func(t *testing.T) tenants.Store { return bolttest.MustOpen(t) })
//	}
//
// newStore must return a new, empty store for each call and arrange its own
// clean-up (and any integrity check) with t.Cleanup. The cases assume
// nothing of a backend beyond tenants.Store's contract: times are compared
// with Equal after UTC (and are whole microseconds), a nil and an empty
// slice are the same, and Generation's starting value is the backend's.
package tenantstest

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/groupgate/groupgate/internal/testkit"
	"github.com/groupgate/groupgate/tenants"
)

// t0 is the start of the fixed timeline the cases stamp records with.
var t0 = time.Date(2026, 3, 2, 9, 15, 0, 0, time.UTC)

// RunStoreTests runs the sequential conformance cases, each in its own
// subtest on a fresh store from newStore.
func RunStoreTests(t *testing.T, newStore func(*testing.T) tenants.Store) {
	t.Helper()
	testkit.RunCases(t, newStore, []testkit.Case[tenants.Store]{
		{Name: "EmptyStore", Run: testEmpty},
		{Name: "TenantRoundTripsEveryField", Run: testTenantRoundTrip},
		{Name: "CreateTenantConflict", Run: testCreateTenantConflict},
		{Name: "TenantNotFound", Run: testTenantNotFound},
		{Name: "TenantsByName", Run: testTenantsByName},
		{Name: "UpdateTenantSeesStoredState", Run: testUpdateTenantSees},
		{Name: "UpdateTenantAddsChangesKeepsProjects", Run: testUpdateTenantProjects},
		{Name: "ProjectRoundTripsEveryField", Run: testProjectRoundTrip},
		{Name: "UpdateTenantErrorWritesNothing", Run: testUpdateTenantAbort},
		{Name: "UpdateTenantCannotRekeyOrRemove", Run: testUpdateTenantRekey},
		{Name: "ProjectNotFound", Run: testProjectNotFound},
		{Name: "ProjectsByIssuerAcrossTenants", Run: testProjectsByIssuer},
		{Name: "ProjectsByIssuerFollowsUpdates", Run: testProjectsByIssuerUpdates},
		{Name: "KeyRoundTripsEveryField", Run: testKeyRoundTrip},
		{Name: "CreateKeyConflict", Run: testCreateKeyConflict},
		{Name: "KeyNotFound", Run: testKeyNotFound},
		{Name: "KeysByCreationAndTenant", Run: testKeysOrder},
		{Name: "UpdateKeyApplies", Run: testUpdateKey},
		{Name: "UpdateKeyErrorWritesNothing", Run: testUpdateKeyAbort},
		{Name: "TouchKeysKeepsTheLaterTime", Run: testTouchKeys},
		{Name: "GenerationMovesWithEveryCommittedChange", Run: testGenerationMoves},
		{Name: "GenerationStaysForReadsTouchesAndRefusals", Run: testGenerationStays},
		{Name: "ValuesAreCopiedInAndOut", Run: testCopies},
	})
}

// RunConcurrencyTests runs the cases that race writers against each other.
// Run them under the race detector.
func RunConcurrencyTests(t *testing.T, newStore func(*testing.T) tenants.Store) {
	t.Helper()
	testkit.RunCases(t, newStore, []testkit.Case[tenants.Store]{
		{Name: "ConcurrentUpdateTenantLosesNothing", Run: testConcurrentUpdateTenant},
		{Name: "ConcurrentUpdateKeyLosesNothing", Run: testConcurrentUpdateKey},
		{Name: "ConcurrentTouchNeverUndoesUpdate", Run: testConcurrentTouch},
		{Name: "ConcurrentCreateTenantSameName", Run: testConcurrentCreateTenant},
		{Name: "ConcurrentCreateKeySameID", Run: testConcurrentCreateKey},
		{Name: "ConcurrentGenerationNeverDecreases", Run: testConcurrentGeneration},
	})
}

// --- fixtures and helpers ---------------------------------------------------

// at returns a time i minutes into the timeline.
func at(i int) time.Time { return t0.Add(time.Duration(i) * time.Minute) }

// tenant returns a tenant named name with every field set.
func tenant(name string) tenants.Tenant {
	cred := func(kind tenants.CredentialKind, ref string, sealed []byte) tenants.Credential {
		c := tenants.Credential{Kind: kind, Ref: ref, Sealed: sealed, SetAt: at(1)}
		if sealed != nil {
			c.Fingerprint = "sha256:0123456789ab"
		}
		return c
	}
	return tenants.Tenant{
		Name: name, Disabled: true, GroupLimit: 40, Interval: 1500 * time.Millisecond,
		TechPass: tenants.TechPass{
			APIURL: "https://techpass.example/api", DirectoryID: "dir-" + name, ClientID: "client-" + name,
			TokenURL:              "https://login.example/token",
			ClientSecret:          cred(tenants.CredentialStored, "", []byte{1, 2, 3, 4, 5}),
			APIKey:                cred(tenants.CredentialFile, "/run/secrets/api-key", nil),
			WebhookSecret:         cred(tenants.CredentialEnv, "HOOK_SECRET", nil),
			PreviousWebhookSecret: cred(tenants.CredentialStored, "", []byte{9, 8, 7}),
		},
		CreatedAt: at(0), UpdatedAt: at(2),
	}
}

// plainTenant returns a tenant with only what Admin always sets.
func plainTenant(name string) tenants.Tenant {
	return tenants.Tenant{Name: name, GroupLimit: 50, Interval: time.Second, CreatedAt: at(0), UpdatedAt: at(0)}
}

// project returns a project of tenant with every field set, trusting
// issuer (none if empty).
func project(tenant, name, issuer string) tenants.Project {
	p := tenants.Project{Tenant: tenant, Name: name, Disabled: true, GroupQuota: 3, CreatedAt: at(3), UpdatedAt: at(4)}
	if issuer != "" {
		p.Identity = &tenants.IdentityProvider{
			Issuer: issuer, Audience: "aud-" + tenant + "-" + name, JWKSURL: issuer + "/jwks",
			PublicKeys: []string{"-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n"},
			Algorithms: []string{"RS256", "ES256"}, SubjectClaim: "client_id",
			Scopes: []tenants.Scope{tenants.GroupsRead, tenants.MembersRead},
		}
	}
	return p
}

// key returns a key with every field set; tenant and project may be empty.
func key(id, tenant, project string, created time.Time) tenants.Key {
	role := tenants.RoleOperator
	switch {
	case project != "":
		role = tenants.RoleProject
	case tenant != "":
		role = tenants.RoleTenantAdmin
	}
	k := tenants.Key{
		ID: id, Name: "key " + id, Role: role, Tenant: tenant, Project: project,
		CreatedBy: "key:admin", CreatedAt: created, ExpiresAt: created.Add(90 * 24 * time.Hour),
		RevokedAt: created.Add(time.Hour), LastUsedAt: created.Add(time.Minute),
	}
	if project != "" {
		k.Scopes = []tenants.Scope{tenants.GroupsRead, tenants.GroupsWrite}
	}
	for i := range k.Hash {
		k.Hash[i] = byte(len(id) + i)
	}
	return k
}

// errAbort is what aborting update functions return.
var errAbort = errors.New("tenantstest: abort")

func mustCreateTenant(t *testing.T, s tenants.Store, tn tenants.Tenant) {
	t.Helper()
	if err := s.CreateTenant(t.Context(), tn); err != nil {
		t.Fatalf("CreateTenant(%s): %v", tn.Name, err)
	}
}

// mustAddProjects adds projects to their tenant, which must exist.
func mustAddProjects(t *testing.T, s tenants.Store, tenant string, ps ...tenants.Project) {
	t.Helper()
	_, _, err := s.UpdateTenant(t.Context(), tenant, func(_ *tenants.Tenant, projects *[]tenants.Project) error {
		*projects = append(*projects, ps...)
		return nil
	})
	if err != nil {
		t.Fatalf("UpdateTenant(%s) adding projects: %v", tenant, err)
	}
}

func mustCreateKey(t *testing.T, s tenants.Store, k tenants.Key) {
	t.Helper()
	if err := s.CreateKey(t.Context(), k); err != nil {
		t.Fatalf("CreateKey(%s): %v", k.ID, err)
	}
}

func mustTenant(t *testing.T, s tenants.Store, name string) tenants.Tenant {
	t.Helper()
	tn, err := s.Tenant(t.Context(), name)
	if err != nil {
		t.Fatalf("Tenant(%s): %v", name, err)
	}
	return tn
}

func mustProjects(t *testing.T, s tenants.Store, tenant string) []tenants.Project {
	t.Helper()
	ps, err := s.Projects(t.Context(), tenant)
	if err != nil {
		t.Fatalf("Projects(%s): %v", tenant, err)
	}
	return ps
}

func mustKey(t *testing.T, s tenants.Store, id string) tenants.Key {
	t.Helper()
	k, err := s.Key(t.Context(), id)
	if err != nil {
		t.Fatalf("Key(%s): %v", id, err)
	}
	return k
}

func mustKeys(t *testing.T, s tenants.Store, tenant string) []tenants.Key {
	t.Helper()
	ks, err := s.Keys(t.Context(), tenant)
	if err != nil {
		t.Fatalf("Keys(%q): %v", tenant, err)
	}
	return ks
}

func mustGeneration(t *testing.T, s tenants.Store) uint64 {
	t.Helper()
	g, err := s.Generation(t.Context())
	if err != nil {
		t.Fatalf("Generation: %v", err)
	}
	return g
}

// normalization: what the contract leaves to the backend (a time's
// location, nil against empty slices) is made equal before comparing.

func normTime(tm time.Time) time.Time { return tm.UTC() }

func normSlice[S ~[]E, E any](s S) S {
	if len(s) == 0 {
		return nil
	}
	return slices.Clone(s)
}

func normCred(c tenants.Credential) tenants.Credential {
	c.Sealed = normSlice(c.Sealed)
	c.SetAt = normTime(c.SetAt)
	return c
}

func normTenant(tn tenants.Tenant) tenants.Tenant {
	tp := &tn.TechPass
	tp.ClientSecret, tp.APIKey = normCred(tp.ClientSecret), normCred(tp.APIKey)
	tp.WebhookSecret, tp.PreviousWebhookSecret = normCred(tp.WebhookSecret), normCred(tp.PreviousWebhookSecret)
	tn.CreatedAt, tn.UpdatedAt = normTime(tn.CreatedAt), normTime(tn.UpdatedAt)
	return tn
}

func normProject(p tenants.Project) tenants.Project {
	if p.Identity != nil {
		idp := *p.Identity
		idp.PublicKeys, idp.Algorithms, idp.Scopes = normSlice(idp.PublicKeys), normSlice(idp.Algorithms), normSlice(idp.Scopes)
		p.Identity = &idp
	}
	p.CreatedAt, p.UpdatedAt = normTime(p.CreatedAt), normTime(p.UpdatedAt)
	return p
}

func normKey(k tenants.Key) tenants.Key {
	k.Scopes = normSlice(k.Scopes)
	k.CreatedAt, k.ExpiresAt, k.RevokedAt, k.LastUsedAt = normTime(k.CreatedAt), normTime(k.ExpiresAt), normTime(k.RevokedAt), normTime(k.LastUsedAt)
	return k
}

func normAll[T any](xs []T, norm func(T) T) []T {
	out := make([]T, len(xs))
	for i, x := range xs {
		out[i] = norm(x)
	}
	return out
}

func wantTenant(t *testing.T, what string, got, want tenants.Tenant) {
	t.Helper()
	if g, w := normTenant(got), normTenant(want); !reflect.DeepEqual(g, w) {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, g, w)
	}
}

func wantProjects(t *testing.T, what string, got []tenants.Project, want ...tenants.Project) {
	t.Helper()
	if g, w := normAll(got, normProject), normAll(want, normProject); !reflect.DeepEqual(g, w) {
		t.Fatalf("%s:\n got %s\nwant %s", what, showProjects(g), showProjects(w))
	}
}

func showProjects(ps []tenants.Project) string {
	out := "["
	for _, p := range ps {
		out += fmt.Sprintf("%+v", p)
		if p.Identity != nil {
			out += fmt.Sprintf(" identity %+v", *p.Identity)
		}
		out += "; "
	}
	return out + "]"
}

func wantKey(t *testing.T, what string, got, want tenants.Key) {
	t.Helper()
	if g, w := normKey(got), normKey(want); !reflect.DeepEqual(g, w) {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, g, w)
	}
}

func keyIDs(ks []tenants.Key) []string {
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = k.ID
	}
	return out
}

func projectNames(ps []tenants.Project) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Tenant + ":" + p.Name
	}
	return out
}

// --- tenants -----------------------------------------------------------------

// testEmpty: a new store lists nothing, and says so without an error.
func testEmpty(t *testing.T, s tenants.Store) {
	ctx := t.Context()
	if ts, err := s.Tenants(ctx); err != nil || len(ts) != 0 {
		t.Fatalf("Tenants() = %v, %v; want none", ts, err)
	}
	if ks, err := s.Keys(ctx, ""); err != nil || len(ks) != 0 {
		t.Fatalf("Keys(\"\") = %v, %v; want none", ks, err)
	}
	if ps, err := s.ProjectsByIssuer(ctx, "https://idp.example"); err != nil || len(ps) != 0 {
		t.Fatalf("ProjectsByIssuer = %v, %v; want none", ps, err)
	}
	mustGeneration(t, s)
}

// testTenantRoundTrip: a created tenant reads back with every field as
// given, in Tenant and in Tenants.
func testTenantRoundTrip(t *testing.T, s tenants.Store) {
	want := tenant("SHIP")
	mustCreateTenant(t, s, want)
	wantTenant(t, "Tenant(SHIP)", mustTenant(t, s, "SHIP"), want)
	ts, err := s.Tenants(t.Context())
	if err != nil || len(ts) != 1 {
		t.Fatalf("Tenants() = %d tenants, %v; want 1", len(ts), err)
	}
	wantTenant(t, "Tenants()[0]", ts[0], want)
	// Zero values round-trip as zero values.
	mustCreateTenant(t, s, tenants.Tenant{Name: "BARE"})
	wantTenant(t, "Tenant(BARE)", mustTenant(t, s, "BARE"), tenants.Tenant{Name: "BARE"})
}

// testCreateTenantConflict: creating a taken name fails with ErrConflict
// and leaves the first tenant as it was.
func testCreateTenantConflict(t *testing.T, s tenants.Store) {
	first := tenant("SHIP")
	mustCreateTenant(t, s, first)
	second := plainTenant("SHIP")
	if err := s.CreateTenant(t.Context(), second); !errors.Is(err, tenants.ErrConflict) {
		t.Fatalf("CreateTenant(SHIP) again = %v, want ErrConflict", err)
	}
	wantTenant(t, "Tenant(SHIP) after the refused create", mustTenant(t, s, "SHIP"), first)
}

// testTenantNotFound: reads and updates of an unknown tenant fail with
// ErrNotFound, and the update does not call fn; names are exact.
func testTenantNotFound(t *testing.T, s tenants.Store) {
	ctx := t.Context()
	mustCreateTenant(t, s, plainTenant("SHIP"))
	for _, name := range []string{"PORT", "SHI", "SHIPS", ""} {
		if tn, err := s.Tenant(ctx, name); !errors.Is(err, tenants.ErrNotFound) {
			t.Fatalf("Tenant(%q) = %+v, %v; want ErrNotFound", name, tn, err)
		}
	}
	called := false
	_, _, err := s.UpdateTenant(ctx, "PORT", func(*tenants.Tenant, *[]tenants.Project) error {
		called = true
		return nil
	})
	if !errors.Is(err, tenants.ErrNotFound) || called {
		t.Fatalf("UpdateTenant(PORT) = %v (fn called: %t); want ErrNotFound without calling fn", err, called)
	}
	if ts, err := s.Tenants(ctx); err != nil || len(ts) != 1 {
		t.Fatalf("Tenants() after the refused update = %d, %v; want only SHIP", len(ts), err)
	}
	if ps := mustProjects(t, s, "PORT"); len(ps) != 0 {
		t.Fatalf("Projects(PORT) = %v; an unknown tenant has none", ps)
	}
}

// testTenantsByName: Tenants lists every tenant by name, whatever the
// order of creation.
func testTenantsByName(t *testing.T, s tenants.Store) {
	names := []string{"SHIP", "AIR", "PORT", "A-1", "RAIL", "AIR2"}
	for _, n := range names {
		mustCreateTenant(t, s, plainTenant(n))
	}
	ts, err := s.Tenants(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tn := range ts {
		got = append(got, tn.Name)
	}
	want := slices.Sorted(slices.Values(names))
	if !slices.Equal(got, want) {
		t.Fatalf("Tenants() = %q, want %q", got, want)
	}
}

// testUpdateTenantSees: fn gets the stored tenant and its projects by
// name; UpdateTenant returns what it stored, which the reads then show.
func testUpdateTenantSees(t *testing.T, s tenants.Store) {
	ctx := t.Context()
	stored := tenant("SHIP")
	mustCreateTenant(t, s, stored)
	mustAddProjects(t, s, "SHIP", project("SHIP", "MOH", ""), project("SHIP", "HDB", ""), project("SHIP", "MOE", ""))
	var seen tenants.Tenant
	var seenProjects []string
	got, gotProjects, err := s.UpdateTenant(ctx, "SHIP", func(tn *tenants.Tenant, ps *[]tenants.Project) error {
		seen, seenProjects = *tn, projectNames(*ps)
		tn.GroupLimit, tn.Disabled, tn.UpdatedAt = 77, false, at(9)
		tn.TechPass.ClientSecret = tenants.Credential{Kind: tenants.CredentialEnv, Ref: "NEW_SECRET", SetAt: at(9)}
		return nil
	})
	if err != nil {
		t.Fatalf("UpdateTenant(SHIP): %v", err)
	}
	wantTenant(t, "tenant fn was given", seen, stored)
	if want := []string{"SHIP:HDB", "SHIP:MOE", "SHIP:MOH"}; !slices.Equal(seenProjects, want) {
		t.Fatalf("fn was given projects %q, want %q", seenProjects, want)
	}
	want := stored
	want.GroupLimit, want.Disabled, want.UpdatedAt = 77, false, at(9)
	want.TechPass.ClientSecret = tenants.Credential{Kind: tenants.CredentialEnv, Ref: "NEW_SECRET", SetAt: at(9)}
	wantTenant(t, "UpdateTenant's result", got, want)
	wantTenant(t, "Tenant(SHIP) after the update", mustTenant(t, s, "SHIP"), want)
	wantProjects(t, "UpdateTenant's projects (fn kept them)", gotProjects,
		project("SHIP", "HDB", ""), project("SHIP", "MOE", ""), project("SHIP", "MOH", ""))
}

// testUpdateTenantProjects: projects fn adds are stored, projects it
// changes are changed, projects it leaves are kept; Projects lists them by
// name, and UpdateTenant returns them in fn's order.
func testUpdateTenantProjects(t *testing.T, s tenants.Store) {
	ctx := t.Context()
	mustCreateTenant(t, s, plainTenant("SHIP"))
	mustCreateTenant(t, s, plainTenant("PORT"))
	moh, moe := project("SHIP", "MOH", ""), project("SHIP", "MOE", "https://idp.example")
	_, got, err := s.UpdateTenant(ctx, "SHIP", func(_ *tenants.Tenant, ps *[]tenants.Project) error {
		if len(*ps) != 0 {
			return fmt.Errorf("fn was given %d projects, want none", len(*ps))
		}
		*ps = append(*ps, moh, moe)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wantProjects(t, "UpdateTenant's projects", got, moh, moe)
	wantProjects(t, "Projects(SHIP)", mustProjects(t, s, "SHIP"), moe, moh)

	// Change MOH, keep MOE, add HDB (at the front, to check the order).
	hdb := project("SHIP", "HDB", "")
	hdb.Disabled = false
	changed := moh
	changed.GroupQuota, changed.Disabled, changed.UpdatedAt = 9, false, at(20)
	changed.Identity = project("SHIP", "MOH", "https://other.example").Identity
	_, got, err = s.UpdateTenant(ctx, "SHIP", func(_ *tenants.Tenant, ps *[]tenants.Project) error {
		for i := range *ps {
			if (*ps)[i].Name == "MOH" {
				(*ps)[i] = changed
			}
		}
		*ps = append([]tenants.Project{hdb}, *ps...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wantProjects(t, "UpdateTenant's projects", got, hdb, moe, changed)
	wantProjects(t, "Projects(SHIP)", mustProjects(t, s, "SHIP"), hdb, moe, changed)
	for _, p := range []tenants.Project{hdb, moe, changed} {
		gotP, err := s.Project(ctx, "SHIP", p.Name)
		if err != nil {
			t.Fatalf("Project(SHIP, %s): %v", p.Name, err)
		}
		wantProjects(t, "Project(SHIP, "+p.Name+")", []tenants.Project{gotP}, p)
	}
	// Another tenant's projects are its own.
	if ps := mustProjects(t, s, "PORT"); len(ps) != 0 {
		t.Fatalf("Projects(PORT) = %s; want none", showProjects(ps))
	}
	// An update that touches only the tenant keeps every project.
	if _, _, err := s.UpdateTenant(ctx, "SHIP", func(tn *tenants.Tenant, _ *[]tenants.Project) error {
		tn.GroupLimit = 3
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	wantProjects(t, "Projects(SHIP) after a tenant-only update", mustProjects(t, s, "SHIP"), hdb, moe, changed)
}

// testProjectRoundTrip: a project, identity provider included, reads back
// with every field as given; one without a provider has none.
func testProjectRoundTrip(t *testing.T, s tenants.Store) {
	mustCreateTenant(t, s, plainTenant("SHIP"))
	with, without := project("SHIP", "MOH", "https://idp.example/realms/moh"), project("SHIP", "MOE", "")
	mustAddProjects(t, s, "SHIP", with, without)
	for _, p := range []tenants.Project{with, without} {
		got, err := s.Project(t.Context(), "SHIP", p.Name)
		if err != nil {
			t.Fatal(err)
		}
		wantProjects(t, "Project(SHIP, "+p.Name+")", []tenants.Project{got}, p)
	}
	bare := tenants.Project{Tenant: "SHIP", Name: "BARE"}
	mustAddProjects(t, s, "SHIP", bare)
	got, err := s.Project(t.Context(), "SHIP", "BARE")
	if err != nil {
		t.Fatal(err)
	}
	wantProjects(t, "Project(SHIP, BARE)", []tenants.Project{got}, bare)
}

// testUpdateTenantAbort: fn's error is returned (errors.Is finds it) and
// nothing fn changed before failing is written: not the tenant, not a
// changed project, not an added one.
func testUpdateTenantAbort(t *testing.T, s tenants.Store) {
	ctx := t.Context()
	before := tenant("SHIP")
	mustCreateTenant(t, s, before)
	moh := project("SHIP", "MOH", "https://idp.example")
	mustAddProjects(t, s, "SHIP", moh)
	_, _, err := s.UpdateTenant(ctx, "SHIP", func(tn *tenants.Tenant, ps *[]tenants.Project) error {
		tn.GroupLimit, tn.Disabled = 1, false
		tn.TechPass.ClientSecret.Sealed[0] = 0xff
		(*ps)[0].GroupQuota = 99
		(*ps)[0].Identity.Issuer = "https://changed.example"
		*ps = append(*ps, project("SHIP", "NEW", "https://idp.example"))
		return fmt.Errorf("quota check: %w", errAbort)
	})
	if !errors.Is(err, errAbort) {
		t.Fatalf("UpdateTenant with a failing fn = %v, want its error", err)
	}
	wantTenant(t, "Tenant(SHIP) after the aborted update", mustTenant(t, s, "SHIP"), before)
	wantProjects(t, "Projects(SHIP) after the aborted update", mustProjects(t, s, "SHIP"), moh)
	if p, err := s.Project(ctx, "SHIP", "NEW"); !errors.Is(err, tenants.ErrNotFound) {
		t.Fatalf("Project(SHIP, NEW) = %+v, %v; the aborted update added it", p, err)
	}
	if ps, err := s.ProjectsByIssuer(ctx, "https://changed.example"); err != nil || len(ps) != 0 {
		t.Fatalf("ProjectsByIssuer(changed) = %s, %v; the aborted update changed the issuer", showProjects(ps), err)
	}
}

// testUpdateTenantRekey: names are the store's keys and a project cannot
// be removed. An fn that renames the tenant, drops a project, lists a
// project twice or moves one to another tenant gets an error and writes
// nothing (not even its other changes), and no record appears elsewhere.
func testUpdateTenantRekey(t *testing.T, s tenants.Store) {
	ctx := t.Context()
	before := plainTenant("SHIP")
	mustCreateTenant(t, s, before)
	mustCreateTenant(t, s, plainTenant("PORT"))
	moh, moe := project("SHIP", "MOH", ""), project("SHIP", "MOE", "")
	mustAddProjects(t, s, "SHIP", moh, moe)
	cases := []struct {
		name string
		fn   func(*tenants.Tenant, *[]tenants.Project)
	}{
		{"rename the tenant", func(tn *tenants.Tenant, _ *[]tenants.Project) { tn.Name = "AIR" }},
		{"rename the tenant onto another", func(tn *tenants.Tenant, _ *[]tenants.Project) { tn.Name = "PORT" }},
		{"drop a project", func(_ *tenants.Tenant, ps *[]tenants.Project) { *ps = (*ps)[1:] }},
		{"drop every project", func(_ *tenants.Tenant, ps *[]tenants.Project) { *ps = nil }},
		{"rename a project", func(_ *tenants.Tenant, ps *[]tenants.Project) { (*ps)[0].Name = "ZZZ" }},
		{"list a project twice", func(_ *tenants.Tenant, ps *[]tenants.Project) { *ps = append(*ps, (*ps)[0]) }},
		{"move a project to another tenant", func(_ *tenants.Tenant, ps *[]tenants.Project) { (*ps)[0].Tenant = "PORT" }},
		{"add a project of another tenant", func(_ *tenants.Tenant, ps *[]tenants.Project) {
			*ps = append(*ps, project("PORT", "NEW", ""))
		}},
	}
	for _, c := range cases {
		gen := mustGeneration(t, s)
		_, _, err := s.UpdateTenant(ctx, "SHIP", func(tn *tenants.Tenant, ps *[]tenants.Project) error {
			tn.GroupLimit = 1 // a change that must not be written either
			c.fn(tn, ps)
			return nil
		})
		if err == nil {
			t.Fatalf("%s: UpdateTenant succeeded, want an error", c.name)
		}
		for _, sentinel := range []error{tenants.ErrNotFound, tenants.ErrConflict, tenants.ErrInvalid} {
			if errors.Is(err, sentinel) {
				t.Fatalf("%s: UpdateTenant = %v; a programming error is none of the package's sentinels", c.name, err)
			}
		}
		wantTenant(t, c.name+": Tenant(SHIP)", mustTenant(t, s, "SHIP"), before)
		wantProjects(t, c.name+": Projects(SHIP)", mustProjects(t, s, "SHIP"), moe, moh)
		if ps := mustProjects(t, s, "PORT"); len(ps) != 0 {
			t.Fatalf("%s: Projects(PORT) = %s; want none", c.name, showProjects(ps))
		}
		if ts, err := s.Tenants(ctx); err != nil || len(ts) != 2 {
			t.Fatalf("%s: Tenants() = %d, %v; want SHIP and PORT only", c.name, len(ts), err)
		}
		if got := mustGeneration(t, s); got != gen {
			t.Fatalf("%s: Generation moved from %d to %d for a refused update", c.name, gen, got)
		}
	}
}

// testProjectNotFound: Project fails with ErrNotFound for an unknown
// project or tenant; names are exact.
func testProjectNotFound(t *testing.T, s tenants.Store) {
	mustCreateTenant(t, s, plainTenant("SHIP"))
	mustAddProjects(t, s, "SHIP", project("SHIP", "MOH", ""))
	mustCreateTenant(t, s, plainTenant("PORT"))
	for _, c := range [][2]string{{"SHIP", "MOE"}, {"SHIP", "MO"}, {"PORT", "MOH"}, {"AIR", "MOH"}, {"", "MOH"}, {"SHIP", ""}} {
		if p, err := s.Project(t.Context(), c[0], c[1]); !errors.Is(err, tenants.ErrNotFound) {
			t.Fatalf("Project(%q, %q) = %+v, %v; want ErrNotFound", c[0], c[1], p, err)
		}
	}
}

// testProjectsByIssuer: the projects whose provider has exactly the
// issuer, across tenants, by tenant then name, with their tenant set.
func testProjectsByIssuer(t *testing.T, s tenants.Store) {
	const iss, other = "https://idp.example", "https://idp.example/other"
	for _, n := range []string{"SHIP", "PORT", "AIR"} {
		mustCreateTenant(t, s, plainTenant(n))
	}
	shipB, shipA := project("SHIP", "B", iss), project("SHIP", "A", iss)
	portZ := project("PORT", "Z", iss)
	mustAddProjects(t, s, "SHIP", shipB, project("SHIP", "C", other), project("SHIP", "D", ""), shipA)
	mustAddProjects(t, s, "PORT", portZ, project("PORT", "Y", "https://idp.example/"))
	mustAddProjects(t, s, "AIR", project("AIR", "X", ""))
	got, err := s.ProjectsByIssuer(t.Context(), iss)
	if err != nil {
		t.Fatal(err)
	}
	wantProjects(t, "ProjectsByIssuer("+iss+")", got, portZ, shipA, shipB)
	got, err = s.ProjectsByIssuer(t.Context(), other)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"SHIP:C"}; !slices.Equal(projectNames(got), want) {
		t.Fatalf("ProjectsByIssuer(%s) = %q, want %q", other, projectNames(got), want)
	}
	for _, unknown := range []string{"https://nobody.example", "https://IDP.example", "https://idp.exampl", ""} {
		if got, err := s.ProjectsByIssuer(t.Context(), unknown); err != nil || len(got) != 0 {
			t.Fatalf("ProjectsByIssuer(%q) = %q, %v; want none", unknown, projectNames(got), err)
		}
	}
}

// testProjectsByIssuerUpdates: ProjectsByIssuer follows updates: a new
// issuer, a removed provider.
func testProjectsByIssuerUpdates(t *testing.T, s tenants.Store) {
	ctx := t.Context()
	const a, b = "https://a.example", "https://b.example"
	mustCreateTenant(t, s, plainTenant("SHIP"))
	mustAddProjects(t, s, "SHIP", project("SHIP", "MOH", a), project("SHIP", "MOE", a))
	if _, _, err := s.UpdateTenant(ctx, "SHIP", func(_ *tenants.Tenant, ps *[]tenants.Project) error {
		for i := range *ps {
			switch (*ps)[i].Name {
			case "MOH":
				(*ps)[i].Identity.Issuer = b
			case "MOE":
				(*ps)[i].Identity = nil
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for iss, want := range map[string][]string{a: nil, b: {"SHIP:MOH"}} {
		got, err := s.ProjectsByIssuer(ctx, iss)
		if err != nil || !slices.Equal(projectNames(got), want) {
			t.Fatalf("ProjectsByIssuer(%s) = %q, %v; want %q", iss, projectNames(got), err, want)
		}
	}
}

// --- keys --------------------------------------------------------------------

// testKeyRoundTrip: a created key reads back with every field as given,
// in Key and in Keys; so do operator keys and zero values.
func testKeyRoundTrip(t *testing.T, s tenants.Store) {
	for _, k := range []tenants.Key{
		key("k1project", "SHIP", "MOH", at(1)),
		key("k2admin", "SHIP", "", at(2)),
		key("k3operator", "", "", at(3)),
		{ID: "k4bare"},
	} {
		mustCreateKey(t, s, k)
		wantKey(t, "Key("+k.ID+")", mustKey(t, s, k.ID), k)
		ks := mustKeys(t, s, k.Tenant)
		i := slices.IndexFunc(ks, func(x tenants.Key) bool { return x.ID == k.ID })
		if i < 0 {
			t.Fatalf("Keys(%q) = %q, missing %s", k.Tenant, keyIDs(ks), k.ID)
		}
		wantKey(t, "Keys("+k.Tenant+") entry "+k.ID, ks[i], k)
	}
}

// testCreateKeyConflict: creating a taken id fails with ErrConflict and
// leaves the first key as it was.
func testCreateKeyConflict(t *testing.T, s tenants.Store) {
	first := key("k1", "SHIP", "MOH", at(1))
	mustCreateKey(t, s, first)
	if err := s.CreateKey(t.Context(), key("k1", "PORT", "", at(5))); !errors.Is(err, tenants.ErrConflict) {
		t.Fatalf("CreateKey(k1) again = %v, want ErrConflict", err)
	}
	wantKey(t, "Key(k1) after the refused create", mustKey(t, s, "k1"), first)
	if ks := mustKeys(t, s, ""); len(ks) != 1 {
		t.Fatalf("Keys(\"\") = %q; want k1 only", keyIDs(ks))
	}
}

// testKeyNotFound: Key and UpdateKey fail with ErrNotFound for an unknown
// id, and UpdateKey does not call fn or create the key.
func testKeyNotFound(t *testing.T, s tenants.Store) {
	mustCreateKey(t, s, key("k1", "SHIP", "", at(1)))
	for _, id := range []string{"k2", "k", "k10", ""} {
		if k, err := s.Key(t.Context(), id); !errors.Is(err, tenants.ErrNotFound) {
			t.Fatalf("Key(%q) = %+v, %v; want ErrNotFound", id, k, err)
		}
	}
	called := false
	if _, err := s.UpdateKey(t.Context(), "k2", func(*tenants.Key) error { called = true; return nil }); !errors.Is(err, tenants.ErrNotFound) || called {
		t.Fatalf("UpdateKey(k2) = %v (fn called: %t); want ErrNotFound without calling fn", err, called)
	}
	if _, err := s.Key(t.Context(), "k2"); !errors.Is(err, tenants.ErrNotFound) {
		t.Fatalf("UpdateKey created k2: %v", err)
	}
}

// testKeysOrder: Keys lists by CreatedAt, then ID, whatever the order of
// creation or of the ids; a tenant's list has its tenant-admin and project
// keys only; the empty tenant lists every key, operators' included.
func testKeysOrder(t *testing.T, s tenants.Store) {
	ks := []tenants.Key{
		key("zz", "SHIP", "MOH", at(1)),
		key("aa", "SHIP", "", at(3)),
		key("mm", "", "", at(2)),
		key("bb", "PORT", "X", at(0)),
		key("cc", "SHIP", "MOE", at(3)), // same instant as aa: by id
		key("ab", "SHIP", "MOH", at(3)),
		key("yy", "SHIPS", "", at(4)), // a tenant whose name starts like SHIP's
	}
	for _, k := range ks {
		mustCreateKey(t, s, k)
	}
	for tenant, want := range map[string][]string{
		"":      {"bb", "zz", "mm", "aa", "ab", "cc", "yy"},
		"SHIP":  {"zz", "aa", "ab", "cc"},
		"PORT":  {"bb"},
		"SHIPS": {"yy"},
		"SHI":   nil,
		"AIR":   nil,
	} {
		if got := keyIDs(mustKeys(t, s, tenant)); !slices.Equal(got, want) {
			t.Fatalf("Keys(%q) = %q, want %q", tenant, got, want)
		}
	}
}

// testUpdateKey: fn gets the stored key; what it leaves is stored and
// returned.
func testUpdateKey(t *testing.T, s tenants.Store) {
	stored := key("k1", "SHIP", "MOH", at(1))
	stored.RevokedAt = time.Time{}
	mustCreateKey(t, s, stored)
	mustCreateKey(t, s, key("k2", "SHIP", "MOH", at(2)))
	var seen tenants.Key
	got, err := s.UpdateKey(t.Context(), "k1", func(k *tenants.Key) error {
		seen = *k
		k.RevokedAt, k.Name = at(30), "renamed"
		k.Scopes = append(k.Scopes, tenants.MembersWrite)
		return nil
	})
	if err != nil {
		t.Fatalf("UpdateKey(k1): %v", err)
	}
	wantKey(t, "key fn was given", seen, stored)
	want := stored
	want.RevokedAt, want.Name = at(30), "renamed"
	want.Scopes = []tenants.Scope{tenants.GroupsRead, tenants.GroupsWrite, tenants.MembersWrite}
	wantKey(t, "UpdateKey's result", got, want)
	wantKey(t, "Key(k1) after the update", mustKey(t, s, "k1"), want)
	wantKey(t, "Key(k2), not updated", mustKey(t, s, "k2"), key("k2", "SHIP", "MOH", at(2)))
	if ids := keyIDs(mustKeys(t, s, "")); !slices.Equal(ids, []string{"k1", "k2"}) {
		t.Fatalf("Keys(\"\") after the update = %q", ids)
	}
}

// testUpdateKeyAbort: fn's error is returned and nothing fn changed is
// written; an fn that changes the key's id gets an error and writes
// nothing, under either id.
func testUpdateKeyAbort(t *testing.T, s tenants.Store) {
	ctx := t.Context()
	before := key("k1", "SHIP", "MOH", at(1))
	mustCreateKey(t, s, before)
	_, err := s.UpdateKey(ctx, "k1", func(k *tenants.Key) error {
		k.RevokedAt, k.Scopes[0] = time.Time{}, tenants.MembersWrite
		return fmt.Errorf("check: %w", errAbort)
	})
	if !errors.Is(err, errAbort) {
		t.Fatalf("UpdateKey with a failing fn = %v, want its error", err)
	}
	wantKey(t, "Key(k1) after the aborted update", mustKey(t, s, "k1"), before)

	if _, err := s.UpdateKey(ctx, "k1", func(k *tenants.Key) error { k.ID, k.Name = "k9", "moved"; return nil }); err == nil {
		t.Fatal("UpdateKey changing the id succeeded, want an error")
	}
	wantKey(t, "Key(k1) after the refused id change", mustKey(t, s, "k1"), before)
	if _, err := s.Key(ctx, "k9"); !errors.Is(err, tenants.ErrNotFound) {
		t.Fatalf("Key(k9) after the refused id change: %v, want ErrNotFound", err)
	}
}

// testTouchKeys: TouchKeys keeps the later of the stored and the given
// time, for every key given in one call, skips unknown ids without an
// error (creating nothing), and changes nothing else.
func testTouchKeys(t *testing.T, s tenants.Store) {
	ctx := t.Context()
	k1, k2, k3 := key("k1", "SHIP", "MOH", at(1)), key("k2", "SHIP", "", at(2)), key("k3", "", "", at(3))
	k3.LastUsedAt = time.Time{}
	for _, k := range []tenants.Key{k1, k2, k3} {
		mustCreateKey(t, s, k)
	}
	if err := s.TouchKeys(ctx, nil); err != nil {
		t.Fatalf("TouchKeys(nothing): %v", err)
	}
	later, earlier := k1.LastUsedAt.Add(time.Hour), k2.LastUsedAt.Add(-time.Hour)
	err := s.TouchKeys(ctx, map[string]time.Time{"k1": later, "k2": earlier, "k3": at(50), "unknown": at(60)})
	if err != nil {
		t.Fatalf("TouchKeys: %v", err)
	}
	k1.LastUsedAt, k3.LastUsedAt = later, at(50)
	wantKey(t, "Key(k1) touched later", mustKey(t, s, "k1"), k1)
	wantKey(t, "Key(k2) touched earlier", mustKey(t, s, "k2"), k2)
	wantKey(t, "Key(k3) touched for the first time", mustKey(t, s, "k3"), k3)
	if _, err := s.Key(ctx, "unknown"); !errors.Is(err, tenants.ErrNotFound) {
		t.Fatalf("TouchKeys created an unknown key: %v", err)
	}
	// The same time again changes nothing.
	if err := s.TouchKeys(ctx, map[string]time.Time{"k1": later}); err != nil {
		t.Fatal(err)
	}
	wantKey(t, "Key(k1) touched at the same time", mustKey(t, s, "k1"), k1)
}

// --- generation --------------------------------------------------------------

// testGenerationMoves: every successful CreateTenant, UpdateTenant (of the
// tenant or of a project, or adding one), CreateKey and UpdateKey
// increases Generation by the time it returns.
func testGenerationMoves(t *testing.T, s tenants.Store) {
	ctx := t.Context()
	steps := []struct {
		name  string
		write func() error
	}{
		{"CreateTenant", func() error { return s.CreateTenant(ctx, plainTenant("SHIP")) }},
		{"UpdateTenant of the tenant", func() error {
			_, _, err := s.UpdateTenant(ctx, "SHIP", func(tn *tenants.Tenant, _ *[]tenants.Project) error { tn.Disabled = true; return nil })
			return err
		}},
		{"UpdateTenant adding a project", func() error {
			_, _, err := s.UpdateTenant(ctx, "SHIP", func(_ *tenants.Tenant, ps *[]tenants.Project) error {
				*ps = append(*ps, project("SHIP", "MOH", ""))
				return nil
			})
			return err
		}},
		{"UpdateTenant changing a project", func() error {
			_, _, err := s.UpdateTenant(ctx, "SHIP", func(_ *tenants.Tenant, ps *[]tenants.Project) error { (*ps)[0].Disabled = false; return nil })
			return err
		}},
		{"CreateKey", func() error { return s.CreateKey(ctx, key("k1", "SHIP", "MOH", at(1))) }},
		{"UpdateKey", func() error {
			_, err := s.UpdateKey(ctx, "k1", func(k *tenants.Key) error { k.RevokedAt = at(9); return nil })
			return err
		}},
		{"CreateTenant of another", func() error { return s.CreateTenant(ctx, plainTenant("PORT")) }},
	}
	prev := mustGeneration(t, s)
	for _, st := range steps {
		if err := st.write(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		got := mustGeneration(t, s)
		if got <= prev {
			t.Fatalf("after %s Generation = %d, was %d; want it increased", st.name, got, prev)
		}
		prev = got
	}
}

// testGenerationStays: reads, TouchKeys and refused or aborted writes leave
// Generation as it is.
func testGenerationStays(t *testing.T, s tenants.Store) {
	ctx := t.Context()
	mustCreateTenant(t, s, plainTenant("SHIP"))
	mustAddProjects(t, s, "SHIP", project("SHIP", "MOH", "https://idp.example"))
	mustCreateKey(t, s, key("k1", "SHIP", "MOH", at(1)))
	steps := []struct {
		name string
		op   func() error
	}{
		{"reads", func() error {
			_, err1 := s.Tenant(ctx, "SHIP")
			_, err2 := s.Tenants(ctx)
			_, err3 := s.Project(ctx, "SHIP", "MOH")
			_, err4 := s.Projects(ctx, "SHIP")
			_, err5 := s.ProjectsByIssuer(ctx, "https://idp.example")
			_, err6 := s.Key(ctx, "k1")
			_, err7 := s.Keys(ctx, "")
			return errors.Join(err1, err2, err3, err4, err5, err6, err7)
		}},
		{"TouchKeys", func() error { return s.TouchKeys(ctx, map[string]time.Time{"k1": at(100), "nope": at(100)}) }},
		{"CreateTenant refused", func() error { return wantErr(s.CreateTenant(ctx, plainTenant("SHIP")), tenants.ErrConflict) }},
		{"UpdateTenant of an unknown tenant", func() error {
			_, _, err := s.UpdateTenant(ctx, "PORT", func(*tenants.Tenant, *[]tenants.Project) error { return nil })
			return wantErr(err, tenants.ErrNotFound)
		}},
		{"UpdateTenant aborted", func() error {
			_, _, err := s.UpdateTenant(ctx, "SHIP", func(tn *tenants.Tenant, _ *[]tenants.Project) error { tn.GroupLimit = 1; return errAbort })
			return wantErr(err, errAbort)
		}},
		{"CreateKey refused", func() error { return wantErr(s.CreateKey(ctx, key("k1", "", "", at(2))), tenants.ErrConflict) }},
		{"UpdateKey of an unknown key", func() error {
			_, err := s.UpdateKey(ctx, "k2", func(*tenants.Key) error { return nil })
			return wantErr(err, tenants.ErrNotFound)
		}},
		{"UpdateKey aborted", func() error {
			_, err := s.UpdateKey(ctx, "k1", func(k *tenants.Key) error { k.Name = "x"; return errAbort })
			return wantErr(err, errAbort)
		}},
	}
	for _, st := range steps {
		before := mustGeneration(t, s)
		if err := st.op(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := mustGeneration(t, s); got != before {
			t.Fatalf("%s moved Generation from %d to %d", st.name, before, got)
		}
	}
}

// wantErr returns nil if err is target, and an error saying what it is
// otherwise.
func wantErr(err, target error) error {
	if errors.Is(err, target) {
		return nil
	}
	return fmt.Errorf("got %v, want %v", err, target)
}

// --- copies ------------------------------------------------------------------

// testCopies: values are copied in and out. Changing a value after passing
// it, one returned (slices, byte slices and pointers included), or one fn
// was given after UpdateTenant or UpdateKey returned, changes nothing
// stored.
func testCopies(t *testing.T, s tenants.Store) {
	ctx := t.Context()
	tn := tenant("SHIP")
	mustCreateTenant(t, s, tn)
	want := tenant("SHIP")
	tn.TechPass.ClientSecret.Sealed[0] = 0xff // after passing it
	moh := project("SHIP", "MOH", "https://idp.example")
	mustAddProjects(t, s, "SHIP", moh)
	wantMoh := project("SHIP", "MOH", "https://idp.example")
	moh.Identity.Issuer, moh.Identity.PublicKeys[0], moh.Identity.Scopes[0] = "https://changed.example", "x", "y"
	k := key("k1", "SHIP", "MOH", at(1))
	mustCreateKey(t, s, k)
	wantK := key("k1", "SHIP", "MOH", at(1))
	k.Scopes[0], k.Hash[0] = tenants.MembersWrite, 0xee

	check := func(when string) {
		t.Helper()
		wantTenant(t, "Tenant(SHIP) "+when, mustTenant(t, s, "SHIP"), want)
		wantProjects(t, "Projects(SHIP) "+when, mustProjects(t, s, "SHIP"), wantMoh)
		wantKey(t, "Key(k1) "+when, mustKey(t, s, "k1"), wantK)
	}
	check("after changing what was passed in")

	// What reads return.
	got := mustTenant(t, s, "SHIP")
	got.TechPass.ClientSecret.Sealed[0], got.GroupLimit = 0xff, 1
	ts, err := s.Tenants(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ts[0].TechPass.PreviousWebhookSecret.Sealed[0], ts[0].Name = 0xff, "X"
	p, err := s.Project(ctx, "SHIP", "MOH")
	if err != nil {
		t.Fatal(err)
	}
	p.Identity.Issuer, p.Identity.Algorithms[0], p.Identity.Scopes[0] = "https://changed.example", "none", "y"
	ps := mustProjects(t, s, "SHIP")
	ps[0].Identity.PublicKeys[0], ps[0].GroupQuota = "x", 1000
	byIss, err := s.ProjectsByIssuer(ctx, "https://idp.example")
	if err != nil || len(byIss) != 1 {
		t.Fatalf("ProjectsByIssuer = %d, %v", len(byIss), err)
	}
	byIss[0].Identity.Audience = "changed"
	gk := mustKey(t, s, "k1")
	gk.Scopes[0] = tenants.MembersWrite
	ks := mustKeys(t, s, "SHIP")
	ks[0].Scopes[1], ks[0].Name = tenants.MembersWrite, "changed"
	check("after changing what reads returned")

	// What updates return, and what fn was given, once they returned.
	var given *tenants.Tenant
	var givenProjects *[]tenants.Project
	ut, ups, err := s.UpdateTenant(ctx, "SHIP", func(tn *tenants.Tenant, ps *[]tenants.Project) error {
		given, givenProjects = tn, ps
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ut.TechPass.ClientSecret.Sealed[1] = 0xff
	ups[0].Identity.Issuer = "https://changed.example"
	given.TechPass.APIKey.Ref = "/changed"
	(*givenProjects)[0].Identity.Scopes[0] = "y"
	*givenProjects = append(*givenProjects, project("SHIP", "LATE", ""))
	var givenKey *tenants.Key
	uk, err := s.UpdateKey(ctx, "k1", func(k *tenants.Key) error { givenKey = k; return nil })
	if err != nil {
		t.Fatal(err)
	}
	uk.Scopes[0] = tenants.MembersWrite
	givenKey.Scopes[1], givenKey.Name = tenants.MembersWrite, "changed"
	check("after changing what updates returned or fn was given")
}

// --- concurrency ---------------------------------------------------------------

// testConcurrentUpdateTenant: concurrent updates of one tenant are
// serialized: every increment of the tenant and of each project is kept,
// every project a writer adds is there, and the updates of writers whose fn
// fails leave nothing (even when the store retries other writers' fns).
func testConcurrentUpdateTenant(t *testing.T, s tenants.Store) {
	const writers, each = 8, 15
	mustCreateTenant(t, s, tenants.Tenant{Name: "SHIP", GroupLimit: 0, Interval: time.Second})
	var wg sync.WaitGroup
	errs := make(chan error, writers*each*2)
	for w := range writers {
		name := fmt.Sprintf("P%d", w)
		wg.Go(func() {
			for i := range each {
				_, _, err := s.UpdateTenant(t.Context(), "SHIP", func(tn *tenants.Tenant, ps *[]tenants.Project) error {
					tn.GroupLimit++
					for j := range *ps {
						if (*ps)[j].Name == name {
							(*ps)[j].GroupQuota++
							return nil
						}
					}
					*ps = append(*ps, tenants.Project{Tenant: "SHIP", Name: name, GroupQuota: 1})
					return nil
				})
				if err != nil {
					errs <- err
				}
				// A failing writer between the others.
				_, _, err = s.UpdateTenant(t.Context(), "SHIP", func(tn *tenants.Tenant, ps *[]tenants.Project) error {
					tn.GroupLimit += 1000
					*ps = append(*ps, tenants.Project{Tenant: "SHIP", Name: fmt.Sprintf("BAD%d-%d", w, i)})
					return errAbort
				})
				if !errors.Is(err, errAbort) {
					errs <- fmt.Errorf("failing update: %v, want its error", err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent UpdateTenant: %v", err)
	}
	if got := mustTenant(t, s, "SHIP").GroupLimit; got != writers*each {
		t.Fatalf("GroupLimit = %d after %d increments", got, writers*each)
	}
	ps := mustProjects(t, s, "SHIP")
	if len(ps) != writers {
		t.Fatalf("%d projects stored, want %d: %q", len(ps), writers, projectNames(ps))
	}
	for _, p := range ps {
		if p.GroupQuota != each {
			t.Fatalf("project %s: GroupQuota = %d after %d increments", p.Name, p.GroupQuota, each)
		}
	}
}

// testConcurrentUpdateKey: concurrent updates of one key are serialized:
// every writer's change is kept, and failing writers leave nothing.
func testConcurrentUpdateKey(t *testing.T, s tenants.Store) {
	const writers, each = 8, 15
	mustCreateKey(t, s, tenants.Key{ID: "k1", Name: "k", Role: tenants.RoleProject, Tenant: "SHIP", Project: "MOH", CreatedAt: at(0)})
	var wg sync.WaitGroup
	errs := make(chan error, writers*each*2)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				scope := tenants.Scope(fmt.Sprintf("w%d:%d", w, i))
				if _, err := s.UpdateKey(t.Context(), "k1", func(k *tenants.Key) error {
					k.Scopes = append(k.Scopes, scope)
					return nil
				}); err != nil {
					errs <- err
				}
				if _, err := s.UpdateKey(t.Context(), "k1", func(k *tenants.Key) error {
					k.Scopes = append(k.Scopes, "bad")
					return errAbort
				}); !errors.Is(err, errAbort) {
					errs <- fmt.Errorf("failing update: %v, want its error", err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent UpdateKey: %v", err)
	}
	got := mustKey(t, s, "k1").Scopes
	seen := map[tenants.Scope]bool{}
	for _, sc := range got {
		if sc == "bad" || seen[sc] {
			t.Fatalf("scope %q stored twice or by a failing update", sc)
		}
		seen[sc] = true
	}
	if len(got) != writers*each {
		t.Fatalf("%d scopes stored after %d updates", len(got), writers*each)
	}
}

// testConcurrentTouch: TouchKeys racing UpdateKey never undoes an update
// (a revocation stays), and the latest touch is kept.
func testConcurrentTouch(t *testing.T, s tenants.Store) {
	const rounds = 40
	for _, id := range []string{"k1", "k2"} {
		mustCreateKey(t, s, tenants.Key{ID: id, Name: id, Role: tenants.RoleTenantAdmin, Tenant: "SHIP", CreatedAt: at(0)})
	}
	var wg sync.WaitGroup
	errs := make(chan error, 3*rounds)
	wg.Go(func() {
		for i := range rounds {
			if err := s.TouchKeys(t.Context(), map[string]time.Time{"k1": at(i + 1), "k2": at(i + 1)}); err != nil {
				errs <- err
			}
		}
	})
	for _, id := range []string{"k1", "k2"} {
		wg.Go(func() {
			for i := range rounds {
				if _, err := s.UpdateKey(t.Context(), id, func(k *tenants.Key) error {
					k.Name = fmt.Sprintf("%s-%d", id, i)
					if i == rounds/2 {
						k.RevokedAt = at(1000)
					}
					return nil
				}); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent TouchKeys and UpdateKey: %v", err)
	}
	for _, id := range []string{"k1", "k2"} {
		k := mustKey(t, s, id)
		if want := fmt.Sprintf("%s-%d", id, rounds-1); k.Name != want || !k.RevokedAt.Equal(at(1000)) || !k.LastUsedAt.Equal(at(rounds)) {
			t.Fatalf("Key(%s): Name %q, RevokedAt %v, LastUsedAt %v; want %q, %v, %v", id, k.Name, k.RevokedAt, k.LastUsedAt, want, at(1000), at(rounds))
		}
	}
}

// testConcurrentCreateTenant: of concurrent creates of one name, exactly
// one succeeds; the others get ErrConflict, and the winner's tenant is
// stored.
func testConcurrentCreateTenant(t *testing.T, s tenants.Store) {
	const writers = 16
	var wg sync.WaitGroup
	results := make([]error, writers)
	for w := range writers {
		wg.Go(func() {
			tn := plainTenant("SHIP")
			tn.GroupLimit = w + 1
			results[w] = s.CreateTenant(t.Context(), tn)
		})
	}
	wg.Wait()
	winner := -1
	for w, err := range results {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("writers %d and %d both created SHIP", winner, w)
		case err == nil:
			winner = w
		case !errors.Is(err, tenants.ErrConflict):
			t.Fatalf("writer %d: %v, want ErrConflict", w, err)
		}
	}
	if winner < 0 {
		t.Fatal("no writer created SHIP")
	}
	if got := mustTenant(t, s, "SHIP").GroupLimit; got != winner+1 {
		t.Fatalf("stored SHIP has GroupLimit %d, the winner's is %d", got, winner+1)
	}
}

// testConcurrentCreateKey: of concurrent creates of one id, exactly one
// succeeds; the others get ErrConflict, and the winner's key is stored.
func testConcurrentCreateKey(t *testing.T, s tenants.Store) {
	const writers = 16
	var wg sync.WaitGroup
	results := make([]error, writers)
	for w := range writers {
		wg.Go(func() {
			k := key("k1", "SHIP", "", at(w))
			k.Name = fmt.Sprint(w)
			results[w] = s.CreateKey(t.Context(), k)
		})
	}
	wg.Wait()
	winner := -1
	for w, err := range results {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("writers %d and %d both created k1", winner, w)
		case err == nil:
			winner = w
		case !errors.Is(err, tenants.ErrConflict):
			t.Fatalf("writer %d: %v, want ErrConflict", w, err)
		}
	}
	if winner < 0 {
		t.Fatal("no writer created k1")
	}
	if got := mustKey(t, s, "k1"); got.Name != fmt.Sprint(winner) {
		t.Fatalf("stored k1 is writer %s's, the winner is %d", got.Name, winner)
	}
	if ks := mustKeys(t, s, ""); len(ks) != 1 {
		t.Fatalf("Keys(\"\") = %q, want k1 once", keyIDs(ks))
	}
}

// testConcurrentGeneration: while writers write, readers polling
// Generation never see it decrease, and each writer sees it higher after
// its write returned than before the write began, whatever the others do:
// what a caching reader relies on to see its own change.
func testConcurrentGeneration(t *testing.T, s tenants.Store) {
	const writers, each = 4, 10
	mustCreateTenant(t, s, plainTenant("SHIP"))
	start := mustGeneration(t, s)
	done := make(chan struct{})
	var wg, readers sync.WaitGroup
	errs := make(chan error, writers*each+4)
	for range 2 {
		readers.Go(func() {
			last := start
			for {
				select {
				case <-done:
					return
				default:
				}
				g, err := s.Generation(t.Context())
				if err != nil {
					errs <- err
					return
				}
				if g < last {
					errs <- fmt.Errorf("Generation went from %d back to %d", last, g)
					return
				}
				last = g
			}
		})
	}
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				before, err := s.Generation(t.Context())
				if err != nil {
					errs <- err
					return
				}
				if w%2 == 0 {
					err = s.CreateKey(t.Context(), key(fmt.Sprintf("k%d-%d", w, i), "SHIP", "", at(i)))
				} else {
					_, _, err = s.UpdateTenant(t.Context(), "SHIP", func(tn *tenants.Tenant, _ *[]tenants.Project) error { tn.GroupLimit++; return nil })
				}
				if err != nil {
					errs <- err
					return
				}
				after, err := s.Generation(t.Context())
				if err != nil {
					errs <- err
					return
				}
				if after <= before {
					errs <- fmt.Errorf("writer %d: Generation %d before a write and %d after it", w, before, after)
					return
				}
			}
		})
	}
	wg.Wait()
	close(done)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
