package server_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/groupgate/groupgate/api"
	"github.com/groupgate/groupgate/boltstore"
	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/server"
)

// TestBackupUnderLoadRestores: a backup taken while writes keep arriving is
// a consistent store; restored into a fresh process, it serves the groups
// it holds. A backup taken once the load is done serves exactly the same
// groups as the original.
func TestBackupUnderLoadRestores(t *testing.T) {
	g := startGateway(t, gatewayOptions{interval: 20 * time.Millisecond})
	dir := t.TempDir()
	ctx := context.Background()

	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 30 {
			g.create("SHIP/MOH", fmt.Sprintf("load-%02d", i))
		}
	})
	// Take the first backup in the middle of the load.
	deadline := time.Now().Add(10 * time.Second)
	for len(g.list("SHIP/MOH")) < 10 {
		if time.Now().After(deadline) {
			t.Fatal("the load did not start")
		}
		time.Sleep(5 * time.Millisecond)
	}
	underLoad := filepath.Join(dir, "under-load.db")
	if _, err := server.DownloadBackup(ctx, http.DefaultClient, g.base, g.keys["operator"], underLoad); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if r := g.do("GET", "/v1/backup", "SHIP/MOH", nil); r.status != http.StatusForbidden {
		t.Errorf("a project downloading a backup: %d", r.status)
	}

	// What the under-load backup holds, read straight from the file.
	snap, err := boltstore.Open(underLoad, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	held, err := snap.Groups(ctx, "SHIP", "MOH")
	if err != nil {
		t.Fatal(err)
	}
	if err := snap.Close(); err != nil {
		t.Fatal(err)
	}
	if len(held) < 10 || len(held) > 30 {
		t.Fatalf("the backup holds %d groups, want a point in the middle of the load", len(held))
	}
	restored := startGateway(t, gatewayOptions{store: underLoad})
	if got, want := names(restored.list("SHIP/MOH")), namesOf(held); got != want {
		t.Errorf("restored from the under-load backup:\n got %s\nwant %s", got, want)
	}

	// Once quiet, a backup serves exactly what the original serves.
	for _, gr := range g.list("SHIP/MOH") {
		if gr.PendingOperationId != nil {
			g.await("SHIP/MOH", *gr.PendingOperationId, 10*time.Second)
		}
	}
	quiet := filepath.Join(dir, "quiet.db")
	if _, err := server.DownloadBackup(ctx, http.DefaultClient, g.base, g.keys["operator"], quiet); err != nil {
		t.Fatal(err)
	}
	want := g.list("SHIP/MOH")
	again := startGateway(t, gatewayOptions{store: quiet})
	got := again.list("SHIP/MOH")
	if len(got) != 30 || len(got) != len(want) {
		t.Fatalf("restored %d groups, the original serves %d", len(got), len(want))
	}
	for i := range want {
		if got[i].FullName != want[i].FullName || got[i].State != want[i].State || *got[i].UpstreamId != *want[i].UpstreamId {
			t.Errorf("group %d: restored %+v, original %+v", i, got[i], want[i])
		}
	}
}

// names lists the API groups' full names, sorted.
func names(gs []api.Group) string {
	out := make([]string, len(gs))
	for i, g := range gs {
		out[i] = g.FullName
	}
	sort.Strings(out)
	return fmt.Sprint(out)
}

// namesOf lists the mirror groups' full names, sorted.
func namesOf(gs []groups.Group) string {
	out := make([]string, len(gs))
	for i, g := range gs {
		out[i] = g.Name.String()
	}
	sort.Strings(out)
	return fmt.Sprint(out)
}
