package server_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/groupgate/groupgate/api"
	"github.com/groupgate/groupgate/backup"
	"github.com/groupgate/groupgate/boltstore"
	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/internal/testkit"
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
	if !testkit.Poll(10*time.Second, 5*time.Millisecond, func() bool { return len(g.list("SHIP/MOH")) >= 10 }) {
		t.Fatal("the load did not start")
	}
	underLoad := filepath.Join(dir, "under-load.db")
	if _, err := backup.Download(ctx, g.http, g.base, g.keys["operator"], underLoad); err != nil {
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
	if _, err := backup.Download(ctx, g.http, g.base, g.keys["operator"], quiet); err != nil {
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

// TestBackupCommand: `groupgate backup` downloads a verified backup with the
// operator key from the environment, and refuses without one.
func TestBackupCommand(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	g.await("SHIP/MOH", g.create("SHIP/MOH", "backed-up").Id, 10*time.Second)
	dir := t.TempDir()
	bin := buildGroupgate(t, dir)
	out := filepath.Join(dir, "cli.db")
	cmd := exec.Command(bin, "backup", "-url", g.base, "-out", out)
	cmd.Env = append(os.Environ(), "GROUPGATE_OPERATOR_KEY="+g.keys["operator"])
	if b, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(b), "verified") {
		t.Fatalf("groupgate backup: %v\n%s", err, b)
	}
	st, err := boltstore.Open(out, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	gs, err := st.Groups(context.Background(), "SHIP", "MOH")
	_ = st.Close()
	if err != nil || len(gs) != 1 || gs[0].Name.Group != "backed-up" {
		t.Fatalf("the backup holds %+v, %v", gs, err)
	}
	if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o600 {
		t.Errorf("backup file mode %v, want 0600", fi.Mode().Perm())
	}
	cmd = exec.Command(bin, "backup", "-url", g.base, "-out", filepath.Join(dir, "refused.db"))
	cmd.Env = append(os.Environ(), "GROUPGATE_OPERATOR_KEY="+g.keys["SHIP/MOH"])
	if b, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(b), "403") {
		t.Errorf("a project key must be refused: %v\n%s", err, b)
	}
	if _, err := os.Stat(filepath.Join(dir, "refused.db")); !os.IsNotExist(err) {
		t.Error("a refused backup left a file")
	}
}
