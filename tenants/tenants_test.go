package tenants_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate/tenants"
)

func mustDirectory(t *testing.T, now func() time.Time, ts ...tenants.Tenant) *tenants.Directory {
	t.Helper()
	d, err := tenants.NewDirectory(ts, now)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestAuthenticate(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	good, goodKey := tenants.NewKey()
	expired, expiredKey := tenants.NewKey()
	expiredKey.ExpiresAt = now
	readOnly, roKey := tenants.NewKey()
	roKey.Scopes = []tenants.Scope{tenants.GroupsRead}
	unknown, _ := tenants.NewKey()
	d := mustDirectory(t, func() time.Time { return now }, tenants.Tenant{Name: "SHIP", Projects: []tenants.Project{
		{Name: "MOH", Keys: []tenants.Key{goodKey, expiredKey}},
		{Name: "MOE", Keys: []tenants.Key{roKey}},
	}})
	ctx := context.Background()

	p, err := d.Authenticate(ctx, good)
	if err != nil || p.Tenant != "SHIP" || p.Project != "MOH" || p.KeyID != goodKey.ID || len(p.Scopes) != 2 {
		t.Fatalf("good key: %+v, %v", p, err)
	}
	if p.Actor() != "key:"+goodKey.ID || strings.Contains(p.Actor(), good[len(good)-10:]) {
		t.Errorf("actor %q must name the key id only", p.Actor())
	}
	last := "A"
	if strings.HasSuffix(good, "A") {
		last = "B"
	}
	tampered := good[:len(good)-1] + last
	for name, key := range map[string]string{
		"expired":          expired,
		"unknown id":       unknown,
		"wrong secret":     tampered,
		"empty":            "",
		"no prefix":        strings.TrimPrefix(good, "gk_"),
		"short secret":     good[:len(good)-1],
		"trailing garbage": good + "x",
		"uppercase id":     strings.ToUpper(good[:8]) + good[8:],
	} {
		if _, err := d.Authenticate(ctx, key); !errors.Is(err, tenants.ErrUnauthenticated) {
			t.Errorf("%s: %v, want ErrUnauthenticated", name, err)
		}
		if _, err := d.Authenticate(ctx, key); err != nil && strings.Contains(err.Error(), key[min(len(key), 30):]) && len(key) > 30 {
			t.Errorf("%s: the error echoes the secret part of the key", name)
		}
	}
	ro, err := d.Authenticate(ctx, readOnly)
	if err != nil {
		t.Fatal(err)
	}
	if err := tenants.Authorize(ro, "SHIP", "MOE", tenants.GroupsRead); err != nil {
		t.Errorf("read-only key reading: %v", err)
	}
	if err := tenants.Authorize(ro, "SHIP", "MOE", tenants.GroupsWrite); !errors.Is(err, tenants.ErrForbidden) {
		t.Errorf("read-only key writing: %v", err)
	}
}

func TestAuthorize(t *testing.T) {
	p := tenants.Principal{KeyID: "k", Tenant: "SHIP", Project: "MOH", Scopes: tenants.AllScopes()}
	for _, c := range []struct {
		tenant, project string
		ok              bool
	}{{"SHIP", "MOH", true}, {"SHIP", "MOE", false}, {"OTHER", "MOH", false}, {"ship", "MOH", false}, {"", "", false}} {
		err := tenants.Authorize(p, c.tenant, c.project, tenants.GroupsWrite)
		if (err == nil) != c.ok {
			t.Errorf("Authorize(%s,%s) = %v", c.tenant, c.project, err)
		}
	}
	if err := tenants.Authorize(tenants.Principal{}, "", "", tenants.GroupsRead); err == nil {
		t.Error("the zero principal must be refused")
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
		if _, err := tenants.ParseHash(bad); !errors.Is(err, tenants.ErrInvalidConfig) {
			t.Errorf("ParseHash(%q) = %v", bad, err)
		}
	}
}

func TestNewDirectoryRejectsBadConfig(t *testing.T) {
	_, k := tenants.NewKey()
	bad := k
	bad.Scopes = []tenants.Scope{"groups:admin"}
	_, err := tenants.NewDirectory([]tenants.Tenant{
		{Name: "SHIP", Projects: []tenants.Project{{Name: "MOH", Keys: []tenants.Key{k}}, {Name: "MOH"}}},
		{Name: "SHIP", Projects: []tenants.Project{{Name: "X", Keys: []tenants.Key{k, bad}}}},
	}, nil)
	if !errors.Is(err, tenants.ErrInvalidConfig) {
		t.Fatalf("got %v", err)
	}
	for _, want := range []string{"tenant SHIP defined twice", "project SHIP:MOH defined twice", "used twice", "unknown scope"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error should report %q: %v", want, err)
		}
	}
}

// FuzzAuthenticate: no input makes Authenticate panic or accept anything but
// the one issued key.
func FuzzAuthenticate(f *testing.F) {
	key, stored := tenants.NewKey()
	d, err := tenants.NewDirectory([]tenants.Tenant{{Name: "SHIP", Projects: []tenants.Project{{Name: "MOH", Keys: []tenants.Key{stored}}}}}, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(key)
	f.Add("gk_" + stored.ID + "_" + strings.Repeat("A", 43))
	f.Add("gk__")
	f.Add("Bearer " + key)
	f.Fuzz(func(t *testing.T, s string) {
		p, err := d.Authenticate(context.Background(), s)
		if (err == nil) != (s == key) {
			t.Fatalf("Authenticate(%q) = %+v, %v", s, p, err)
		}
	})
}
