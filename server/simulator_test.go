package server_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/groupgate/groupgate/config"
	"github.com/groupgate/groupgate/internal/pgtest"
)

// simulatorSecrets are the files the built-in simulator writes for tenant
// SIM.
var simulatorSecrets = []string{"SIM.api-key", "SIM.client-secret", "SIM.webhook-secret"}

// TestSimulatorSecretsOnPostgres: with store: postgres and neither
// store_path nor simulator.secrets_dir set, the built-in simulator's
// generated credentials go to a private temporary directory (0700, files
// 0600) that shutdown removes, and nothing is written under the working
// directory. A secrets_dir set is used, and kept.
func TestSimulatorSecretsOnPostgres(t *testing.T) {
	// The databases first: the cluster they are on outlives this test and
	// must not land in the temporary directory below.
	dsns := []string{pgtest.DSN(t), pgtest.DSN(t)}
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	cwd := t.TempDir()
	t.Chdir(cwd)
	configured := filepath.Join(t.TempDir(), "sim-secrets")
	for i, secretsDir := range []string{"", configured} {
		g := startGateway(t, gatewayOptions{postgres: dsns[i], projects: map[string][]string{"SIM": {"MOH"}}, mutate: func(c *config.Config) {
			c.StorePath = config.DefaultConfig().StorePath // relative: under the working directory
			c.Simulator.SecretsDir = secretsDir
			c.Tenants[0].TechPass = config.TechPassConfig{} // the built-in simulator
		}})
		// A create that succeeds: the gateway read the credentials back.
		g.createActive("SIM/MOH", "proof")
		temps, err := filepath.Glob(filepath.Join(tmp, "groupgate-simulator-*"))
		if err != nil {
			t.Fatal(err)
		}
		dir := secretsDir
		if secretsDir == "" {
			if len(temps) != 1 {
				t.Fatalf("temporary simulator directories: %v, want one", temps)
			}
			dir = temps[0]
		} else if len(temps) != 0 {
			t.Fatalf("temporary simulator directories with secrets_dir set: %v, want none", temps)
		}
		wantMode(t, dir, fs.ModeDir|0o700)
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range entries {
			got = append(got, e.Name())
			wantMode(t, filepath.Join(dir, e.Name()), 0o600)
		}
		if !slices.Equal(got, simulatorSecrets) {
			t.Errorf("simulator secrets in %s: %v, want %v", dir, got, simulatorSecrets)
		}
		g.stop()
		_, err = os.Stat(dir)
		switch {
		case secretsDir == "" && !os.IsNotExist(err):
			t.Errorf("the temporary simulator directory after shutdown: %v, want it removed", err)
		case secretsDir != "" && err != nil:
			t.Errorf("the configured secrets_dir after shutdown: %v, want it kept", err)
		}
		if left, err := os.ReadDir(cwd); err != nil || len(left) != 0 {
			t.Errorf("the working directory holds %v (%v), want nothing", left, err)
		}
	}
}

// wantMode fails the test unless path's type and permission bits are mode.
func wantMode(t *testing.T, path string, mode fs.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode() & (fs.ModeType | fs.ModePerm); got != mode {
		t.Errorf("%s: mode %v, want %v", path, got, mode)
	}
}
