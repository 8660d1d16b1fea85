package server_test

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/groupgate/groupgate/api"
	"github.com/groupgate/groupgate/config"
	"github.com/groupgate/groupgate/internal/pgtest"
	"github.com/groupgate/groupgate/techpass/techpasssim"
	"github.com/groupgate/groupgate/webhooks"
)

// commitUnknown is the shared response of openapi.yaml that documents an
// ambiguous commit (503 commit-unknown).
const commitUnknown = "#/components/responses/CommitUnknown"

// writesNothing lists the operations that change something without a
// store write of their own in the request, each with the reason: no commit
// of theirs can go unanswered, so they do not document 503 commit-unknown.
var writesNothing = map[string]string{
	"syncMirror": "it only signals the tenant's reconciler (api.Mirrors.Request); the pass writes later, outside the request",
}

// TestContractCommitUnknown: every operation that writes to the store in
// its request (every POST, PUT, PATCH and DELETE but those in
// writesNothing) documents 503 commit-unknown, and no read does. On
// PostgreSQL any write's COMMIT can go unanswered (pgstore.ErrAmbiguousCommit,
// answered by server/errors.go); TestMain's coverage then needs a test that
// produces each documented 503 (TestAmbiguousCommitAnswers503,
// TestAmbiguousAdminCommitAnswers503, TestAmbiguousCancelAndWebhook).
func TestContractCommitUnknown(t *testing.T) {
	for path, item := range contractSpec(t).Paths.Map() {
		for method, op := range item.Operations() {
			r := op.Responses.Status(http.StatusServiceUnavailable)
			declared := r != nil && r.Ref == commitUnknown
			why, exempt := writesNothing[op.OperationID]
			read := method == http.MethodGet || method == http.MethodHead
			switch {
			case read && exempt:
				t.Errorf("%s (%s %s) is a read: drop it from writesNothing", op.OperationID, method, path)
			case read && declared:
				t.Errorf("%s (%s %s) is a read but documents 503 commit-unknown", op.OperationID, method, path)
			case exempt && declared:
				t.Errorf("%s (%s %s) documents 503 commit-unknown but writesNothing says: %s", op.OperationID, method, path, why)
			case !read && !exempt && !declared:
				t.Errorf("%s (%s %s) writes but does not document 503 commit-unknown (%s), or say in writesNothing why it cannot meet one",
					op.OperationID, method, path, commitUnknown)
			}
		}
	}
	for id := range writesNothing {
		if !slices.Contains(specOperations(t), id) {
			t.Errorf("writesNothing names %s, which openapi.yaml does not have", id)
		}
	}
}

// TestAmbiguousCancelAndWebhook: a cancel and a webhook delivery whose
// COMMIT gets no answer answer 503 commit-unknown with Retry-After, as
// openapi.yaml documents (the validating client checks both). Nothing was
// stored, and the retry settles each: the operation is cancelled; the
// delivery is processed, then a duplicate.
func TestAmbiguousCancelAndWebhook(t *testing.T) {
	dsn := pgtest.DSN(t)
	g := startGateway(t, gatewayOptions{postgres: dsn, interval: 50 * time.Millisecond, mutate: func(c *config.Config) {
		// OTHER's new gate holds its first request for an interval
		// (pacing.NewGate), an hour: its create stays queued.
		for i := range c.Tenants {
			if c.Tenants[i].Name == "OTHER" {
				c.Tenants[i].Interval = config.Duration(time.Hour)
			}
		}
		c.ShutdownGrace = config.Duration(100 * time.Millisecond)
	}})
	users := techpasssim.DemoUsers(1)
	g.createActive("SHIP/MOH", "kept")
	if op := g.await("SHIP/MOH", g.addMembers("SHIP/MOH", "kept", users[0].Email).Id, 20*time.Second); op.State != api.Succeeded {
		t.Fatalf("add a member: %s %+v", op.State, op.Error)
	}
	held := g.create("OTHER/MOH", "held")
	state := func() api.OperationState {
		var op api.Operation
		g.do("GET", "/v1/operations/"+held.Id, "OTHER/MOH", nil).decode(t, &op)
		return op.State
	}
	if s := state(); s != api.Queued {
		t.Fatalf("the create held by the hour-long gate: %s, want queued", s)
	}

	admin, exec := dbAdmin(t, dsn)
	// The cancel: its operation's record is rewritten.
	sleepAtCommit(exec, "INSERT OR UPDATE", "operations")
	cancel := func() response { return g.do("DELETE", "/v1/operations/"+held.Id, "OTHER/MOH", nil) }
	wantCommitUnknown(t, "the cancel", cutAtCommit(t, admin, cancel))
	exec("DROP TRIGGER at_commit ON operations")
	if s := state(); s != api.Queued {
		t.Fatalf("after the cut cancel the operation is %s, want queued (nothing stored)", s)
	}
	if r := cancel(); r.status != http.StatusOK {
		t.Fatalf("the cancel retried: %d %s", r.status, r.body)
	}
	if s := state(); s != api.Cancelled {
		t.Fatalf("after the cancel's retry the operation is %s, want cancelled", s)
	}

	// The delivery: TechPass's redelivery sends the same bytes.
	sleepAtCommit(exec, "INSERT", "deliveries")
	body := mustJSON(t, map[string]any{"event": "user-deleted", "user": map[string]string{"id": users[0].ID, "email": users[0].Email}})
	sig := webhooks.Sign([]byte(g.up.hookSecrets["SHIP"]), time.Now(), body)
	deliver := func() response { return g.deliver("SHIP", body, sig) }
	wantCommitUnknown(t, "the webhook delivery", cutAtCommit(t, admin, deliver))
	exec("DROP TRIGGER at_commit ON deliveries")
	if got := must(g.members("SHIP/MOH", "kept", 0, "")); len(got) != 1 {
		t.Fatalf("after the cut delivery the members are %v, want the deleted user still (nothing stored)", memberEmails(got))
	}
	for _, want := range []api.WebhookReceiptStatus{api.Processed, api.Duplicate} {
		r := deliver()
		if r.status != http.StatusOK {
			t.Fatalf("the delivery again: %d %s", r.status, r.body)
		}
		var rec api.WebhookReceipt
		if r.decode(t, &rec); rec.Status != want {
			t.Fatalf("the delivery again: %s, want %s", r.body, want)
		}
	}
	if got := must(g.members("SHIP/MOH", "kept", 0, "")); len(got) != 0 {
		t.Errorf("after the delivery the members are %v, want none", memberEmails(got))
	}
}
