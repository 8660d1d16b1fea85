package boltstore_test

import (
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/groupgate/groupgate/boltstore/bolttest"
)

// TestLegacyDeletedMarkExpires: a deleted-user mark written before marks
// carried their expiry reads as expiring 30 days after the deletion (what
// the builds that wrote it kept every mark), and is pruned then, not
// before.
func TestLegacyDeletedMarkExpires(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s := bolttest.MustOpenAt(t, path)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	id := "00000000-0000-4000-8000-000000000001"
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.Bucket([]byte("users")).CreateBucketIfNotExists([]byte("SHIP"))
		if err != nil {
			return err
		}
		return b.Put([]byte("d\x00"+id), []byte(`{"id":"`+id+`","deletedAt":"2026-03-02T09:15:00Z"}`))
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	s = bolttest.MustOpenAt(t, path)
	deletedAt := time.Date(2026, 3, 2, 9, 15, 0, 0, time.UTC)
	dl, err := s.DeletedUsers(t.Context(), "SHIP", []string{id})
	if err != nil || !dl[id].Expires.Equal(deletedAt.Add(30*24*time.Hour)) {
		t.Fatalf("DeletedUsers = %+v, %v; want the mark expiring 30 days after %v", dl, err, deletedAt)
	}
	if n, err := s.PruneDeliveries(t.Context(), deletedAt.Add(29*24*time.Hour)); err != nil || n != 0 {
		t.Fatalf("PruneDeliveries after 29 days = %d, %v; want the mark kept", n, err)
	}
	if n, err := s.PruneDeliveries(t.Context(), deletedAt.Add(30*24*time.Hour)); err != nil || n != 1 {
		t.Fatalf("PruneDeliveries after 30 days = %d, %v; want the mark forgotten", n, err)
	}
}
