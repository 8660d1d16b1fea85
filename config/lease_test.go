package config_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate/config"
	"github.com/groupgate/groupgate/internal/testkit"
)

// loadPostgres loads a configuration of store: postgres with extra lines
// under postgres:, and returns it with Validate's verdict.
func loadPostgres(t *testing.T, extra string) (config.Config, error) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "groupgate.yaml")
	testkit.WriteFile(t, file, "allow_http: true\nstore: postgres\npostgres:\n  dsn: postgres://groupgate@db:5432/groupgate\n"+extra)
	c := config.DefaultConfig()
	if err := c.LoadFile(file); err != nil {
		t.Fatal(err)
	}
	return c, c.Validate()
}

// TestPostgresLeaseTTL: postgres.lease_ttl reads as a duration and is
// bounded; 0 (unset) is the default.
func TestPostgresLeaseTTL(t *testing.T) {
	for _, tc := range []struct {
		ttl  string
		want time.Duration
		bad  bool
	}{
		{"1s", time.Second, false},
		{"0s", 0, false},
		{"50ms", 0, true},
		{"1h", 0, true},
	} {
		c, err := loadPostgres(t, "  lease_ttl: "+tc.ttl+"\n")
		if tc.bad {
			if err == nil || !strings.Contains(err.Error(), "postgres.lease_ttl") {
				t.Errorf("lease_ttl %s: %v, want a problem naming postgres.lease_ttl", tc.ttl, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("lease_ttl %s: %v", tc.ttl, err)
		}
		if got := time.Duration(c.Postgres.LeaseTTL); got != tc.want {
			t.Errorf("lease_ttl %s read as %v", tc.ttl, got)
		}
	}
}

// TestPostgresAuthCacheTTL: postgres.auth_cache_ttl reads as a duration,
// is bounded, and reaches the store's settings (1 s when unset); poll_only
// reads as a flag.
func TestPostgresAuthCacheTTL(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		want time.Duration
		bad  bool
	}{
		{"  auth_cache_ttl: 250ms\n  poll_only: true\n", 250 * time.Millisecond, false},
		{"", config.DefaultAuthCacheTTL, false},
		{"  auth_cache_ttl: -1s\n", 0, false},
		{"  auth_cache_ttl: 500us\n", 0, true},
		{"  auth_cache_ttl: 2m\n", 0, true},
	} {
		c, err := loadPostgres(t, tc.yaml)
		if tc.bad {
			if err == nil || !strings.Contains(err.Error(), "postgres.auth_cache_ttl") {
				t.Errorf("%q: %v, want a problem naming postgres.auth_cache_ttl", tc.yaml, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", tc.yaml, err)
		}
		pc, err := c.Postgres.StoreConfig(func(string) string { return "" })
		if err != nil {
			t.Fatal(err)
		}
		if pc.GenerationTTL != tc.want {
			t.Errorf("%q: the store's GenerationTTL is %v, want %v", tc.yaml, pc.GenerationTTL, tc.want)
		}
		if want := strings.Contains(tc.yaml, "poll_only: true"); c.Postgres.PollOnly != want {
			t.Errorf("%q: poll_only read as %v", tc.yaml, c.Postgres.PollOnly)
		}
	}
}
