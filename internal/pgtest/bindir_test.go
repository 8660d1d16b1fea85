package pgtest

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestBinDir: the newest version that has both binaries wins (by number,
// not by name); PATH is the fallback; without either, errNotInstalled
// (which skips the tests, or fails them under CI=true).
func TestBinDir(t *testing.T) {
	root := t.TempDir()
	install := func(dir string, names ...string) {
		t.Helper()
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			if err := os.WriteFile(filepath.Join(dir, n), []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Setenv("PATH", "")
	if _, err := binDir(root); !errors.Is(err, errNotInstalled) {
		t.Fatalf("nothing installed: %v, want errNotInstalled", err)
	}
	install(filepath.Join(root, "9", "bin"), "initdb", "postgres")
	install(filepath.Join(root, "15", "bin"), "initdb", "postgres")
	install(filepath.Join(root, "16", "bin"), "psql") // a client only
	got, err := binDir(root)
	if want := filepath.Join(root, "15", "bin"); err != nil || got != want {
		t.Errorf("binDir: %q, %v; want %q", got, err, want)
	}
	onPath := filepath.Join(t.TempDir(), "bin")
	install(onPath, "initdb", "postgres")
	t.Setenv("PATH", onPath)
	if got, err := binDir(t.TempDir()); err != nil || got != onPath {
		t.Errorf("from PATH: %q, %v; want %q", got, err, onPath)
	}
}
