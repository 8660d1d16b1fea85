package config_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate/config"
	"github.com/groupgate/groupgate/internal/testkit"
)

// TestConfigRetry: retries are bounded by a window (retry.max_duration,
// default 30m), not a count; a configuration written for the count alone
// (retry.max_failures) still loads and keeps it as an extra bound.
func TestConfigRetry(t *testing.T) {
	d := config.DefaultConfig().Retry
	if time.Duration(d.MaxDuration) != 30*time.Minute || d.MaxFailures != 0 {
		t.Errorf("defaults: %+v; want max_duration 30m and no bound on the count", d)
	}
	dir := t.TempDir()
	for _, tc := range []struct {
		name, yaml string
		want       config.RetryConfig
		problem    string
	}{
		{"old file with the count only", "retry:\n  max_failures: 6\n",
			config.RetryConfig{MaxDuration: d.MaxDuration, MaxFailures: 6, BaseDelay: d.BaseDelay, MaxDelay: d.MaxDelay}, ""},
		{"window", "retry:\n  max_duration: 2h\n  base_delay: 2s\n",
			config.RetryConfig{MaxDuration: config.Duration(2 * time.Hour), BaseDelay: config.Duration(2 * time.Second), MaxDelay: d.MaxDelay}, ""},
		{"no window", "retry:\n  max_duration: 0s\n", config.RetryConfig{}, "retry: max_duration"},
		{"negative count", "retry:\n  max_failures: -1\n", config.RetryConfig{}, "max_failures not negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".yaml")
			testkit.WriteFile(t, file, tc.yaml)
			c := config.DefaultConfig()
			if err := c.LoadFile(file); err != nil {
				t.Fatal(err)
			}
			err := c.Validate()
			if tc.problem != "" {
				if err == nil || !strings.Contains(err.Error(), tc.problem) {
					t.Fatalf("Validate: %v; want it to mention %q", err, tc.problem)
				}
				return
			}
			if err != nil && strings.Contains(err.Error(), "retry") {
				t.Fatalf("Validate: %v", err)
			}
			if c.Retry != tc.want {
				t.Errorf("retry %+v, want %+v", c.Retry, tc.want)
			}
		})
	}
}
