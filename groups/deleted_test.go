package groups_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate/dispatch"
	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/queue"
)

// TestMembersAddOfResolvedDeletedUser: an add by e-mail resolved (in an
// earlier step) to an id TechPass has since reported deleted fails "User
// deleted" without an upstream request, as an add by the id does.
func TestMembersAddOfResolvedDeletedUser(t *testing.T) {
	id := "00000000-0000-4000-8000-000000000001"
	payload, _ := json.Marshal(map[string]any{"fullName": fullName, "add": []string{"ann@x.gov.sg"}})
	progress, _ := json.Marshal(map[string]any{"users": map[string]groups.User{"ann@x.gov.sg": {ID: id, Email: "ann@x.gov.sg"}}})
	op := queue.Operation{ID: "op_1", Kind: groups.KindMembers, Target: fullName, Payload: payload, Progress: progress}
	mirror := newMemMirror(groups.Group{Name: groups.Name{Tenant: "SHIP", Project: "MOH", Group: "billing"}, State: groups.Active, UpstreamID: "g-1"})
	mirror.deleted[id] = groups.DeletedUser{ID: id, DeletedAt: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	up := &fakeUpstream{}
	out := groups.NewExecutor(up, mirror, nil, nil).Execute(context.Background(), op)
	if out.Kind != dispatch.Fail || out.Failure == nil || out.Failure.Title != "User deleted" || !strings.Contains(out.Failure.Detail, id) {
		t.Fatalf("outcome %+v, want failed User deleted naming %s", out, id)
	}
	if len(up.calls) != 0 {
		t.Errorf("upstream calls %v, want none", up.calls)
	}
}

// TestDeleteRefusedAsTechBiz: a 403 to the delete of a group the gateway
// created says the group is most likely managed by TechBiz now, even when
// TechPass's answer says nothing of it.
func TestDeleteRefusedAsTechBiz(t *testing.T) {
	up := &fakeUpstream{del: func(string) error { return apiErr(403, 0) }}
	out := groups.NewExecutor(up, nil, nil, nil).Execute(context.Background(), deleteOp("g-1"))
	if out.Kind != dispatch.Fail || out.Failure == nil || out.Failure.Title != "Group managed by TechBiz" || !strings.Contains(out.Failure.Detail, "managed by TechBiz") {
		t.Fatalf("outcome %+v, want failed, managed by TechBiz", out.Failure)
	}
}
