package server_test

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/groupgate/groupgate/api"
	"github.com/groupgate/groupgate/boltstore"
	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/queue"
)

// TestOldOperationIDs: operations stored before ids were encoded in
// base32hex keep ids in lower-case standard base32 ("w"-"z" among them,
// which base32hex lacks). A gateway started on such a bbolt file still
// looks them up, cancels a queued one and retries a failed one, and every
// response (old ids included) matches openapi.yaml.
func TestOldOperationIDs(t *testing.T) {
	const (
		queuedID = "op_aaaaxyz234567wxyzabcdefghi" // queued create of "legacy-queued"
		failedID = "op_aaaazyxw765432zyxwhgfedcba" // failed create of "legacy-failed"
	)
	old := regexp.MustCompile(`^op_[a-z2-7]{26}$`)
	if !old.MatchString(queuedID) || !old.MatchString(failedID) || queue.NewID()[:3] != "op_" {
		t.Fatal("the test's ids are not in the old format")
	}
	path := filepath.Join(t.TempDir(), "groupgate.db")
	st, err := boltstore.Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Add(-time.Hour)
	pending := func(id, group string, notBefore time.Time) {
		t.Helper()
		n := groups.Name{Tenant: "SHIP", Project: "MOH", Group: group}
		payload, _ := json.Marshal(map[string]string{"fullName": n.String(), "description": "from before"})
		op := queue.Operation{
			ID: id, Tenant: n.Tenant, Project: n.Project, Kind: groups.KindCreate, Target: n.String(),
			Payload: payload, Actor: "key:legacy", State: queue.Queued, NotBefore: notBefore, CreatedAt: now, UpdatedAt: now,
		}
		g := groups.Group{Name: n, Description: "from before", State: groups.Creating, PendingOperation: id, CreatedAt: now, UpdatedAt: now}
		if _, err := groups.NewLedger(st).CreatePending(t.Context(), g, op, groups.Limits{}); err != nil {
			t.Fatal(err)
		}
	}
	pending(failedID, "legacy-failed", time.Time{})
	if _, err := groups.NewLedger(st).Finish(t.Context(), failedID, func(o *queue.Operation) ([]groups.Effect, error) {
		o.State, o.Attempts, o.UpdatedAt, o.FinishedAt = queue.Failed, 1, now, now
		o.Failure = &queue.Failure{Status: http.StatusBadGateway, Title: "TechPass error", Detail: "before the upgrade"}
		return groups.Undo(*o, now), nil
	}); err != nil {
		t.Fatal(err)
	}
	// The queued one waits for a retry an hour away, so no dispatcher
	// starts it (which would make it no longer cancellable) before the
	// test cancels it.
	pending(queuedID, "legacy-queued", time.Now().Add(time.Hour))
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	g := startGateway(t, gatewayOptions{store: path})
	r := g.do("GET", "/v1/operations/"+queuedID, "SHIP/MOH", nil)
	var op api.Operation
	r.decode(t, &op)
	if r.status != http.StatusOK || op.Id != queuedID || op.State != api.Queued {
		t.Fatalf("look-up of an old queued operation: %d %s", r.status, r.body)
	}
	r = g.do("DELETE", "/v1/operations/"+queuedID, "SHIP/MOH", nil)
	r.decode(t, &op)
	if r.status != http.StatusOK || op.Id != queuedID || op.State != api.Cancelled {
		t.Fatalf("cancel of an old queued operation: %d %s", r.status, r.body)
	}
	r = g.doWith("POST", "/v1/operations/"+failedID+"/retry", "SHIP/MOH", nil, map[string]string{"Prefer": "wait=20"})
	var retried api.Operation
	r.decode(t, &retried)
	if r.status != http.StatusCreated || retried.State != api.Succeeded || retried.FullName != "SHIP:MOH:legacy-failed" {
		t.Fatalf("retry of an old failed operation: %d %s", r.status, r.body)
	}
	if !regexp.MustCompile(`^op_[0-9a-v]{26}$`).MatchString(retried.Id) {
		t.Errorf("the retry's id %s is not in the new format", retried.Id)
	}
	if again := g.await("SHIP/MOH", failedID, time.Second); again.State != api.Failed || again.Id != failedID {
		t.Errorf("the old failed operation changed: %+v", again)
	}
	if n := g.up.stats("SHIP").CreatesByName["SHIP:MOH:legacy-queued"]; n != 0 {
		t.Errorf("the cancelled old operation reached TechPass %d times", n)
	}
}
