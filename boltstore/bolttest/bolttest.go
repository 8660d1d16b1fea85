// Package bolttest opens real bbolt stores for tests: in a temporary
// directory, closed when the test ends, and checked for integrity the way
// the next start-up would see the file.
package bolttest

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/groupgate/groupgate/boltstore"
)

// MustOpen opens a new store in a temporary directory. When the test ends it
// closes the store and checks the file's integrity.
func MustOpen(tb testing.TB) *boltstore.Store {
	tb.Helper()
	return MustOpenAt(tb, filepath.Join(tb.TempDir(), "state.db"))
}

// MustOpenAt opens the store at path, closing it and checking the file's
// integrity when the test ends (closing twice is harmless, so a test may
// close it earlier).
func MustOpenAt(tb testing.TB, path string) *boltstore.Store {
	tb.Helper()
	s, err := boltstore.Open(path, time.Second)
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() {
		// The store's own checks (pending counts against the queues) need
		// it open; a test that closed it already is checked by file below.
		if err := s.Check(); err != nil && !errors.Is(err, bolt.ErrDatabaseNotOpen) {
			tb.Errorf("store check: %v", err)
		}
		if err := s.Close(); err != nil {
			tb.Errorf("close store: %v", err)
		}
		MustCheckFile(tb, path)
	})
	return s
}

// MustCheckFile opens the closed file at path read-only and fails tb if
// bbolt's consistency check finds a problem.
func MustCheckFile(tb testing.TB, path string) {
	tb.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		tb.Fatalf("open %s for checking: %v", path, err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	})
	if err != nil {
		tb.Errorf("integrity check of %s: %v", path, err)
	}
}
