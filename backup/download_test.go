package backup_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/groupgate/groupgate/backup"
	"github.com/groupgate/groupgate/boltstore"
)

// TestDownloadVerifies: a download that is not a usable store is refused
// and leaves no file behind; a store is kept, mode 0600. (The backup of a
// running gateway under load is tested in package server.)
func TestDownloadVerifies(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.db")
	st, err := boltstore.Open(good, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	var body atomic.Pointer[[]byte] // what the server sends
	bad := []byte("not a store")
	body.Store(&bad)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/backup" || r.Header.Get("Authorization") != "Bearer op-key" {
			http.Error(w, "no", http.StatusForbidden)
			return
		}
		_, _ = w.Write(*body.Load())
	}))
	defer srv.Close()
	ctx := context.Background()

	out := filepath.Join(dir, "backup.db")
	if _, err := backup.Download(ctx, srv.Client(), srv.URL, "op-key", out); err == nil {
		t.Fatal("a file that is not a store was accepted")
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a refused backup left %s: %v", out, err)
	}
	if _, err := backup.Download(ctx, srv.Client(), srv.URL, "wrong", out); err == nil {
		t.Error("a refused request was accepted")
	}
	store, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	body.Store(&store)
	n, err := backup.Download(ctx, srv.Client(), srv.URL, "op-key", out)
	if err != nil || n != int64(len(store)) {
		t.Fatalf("download: %d bytes, %v", n, err)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("kept backup: %v, %v", fi, err)
	}
}
