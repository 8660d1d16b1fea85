package groups_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/techpass"
	"github.com/groupgate/groupgate/throttle"
)

// fakeUpstream is a hand-written fake of groups.Upstream.
type fakeUpstream struct {
	list    func() ([]techpass.Group, error)
	techBiz func() ([]techpass.Group, error)
	create  func(name string) (techpass.Group, error)
	del     func(id string) error
	calls   []string
}

var _ groups.Upstream = (*fakeUpstream)(nil)

func (f *fakeUpstream) ListGroups(context.Context) ([]techpass.Group, error) {
	f.calls = append(f.calls, "list")
	if f.list == nil {
		return nil, nil
	}
	return f.list()
}

func (f *fakeUpstream) ListGroupsWithTechBiz(context.Context) ([]techpass.Group, error) {
	f.calls = append(f.calls, "list+techbiz")
	if f.techBiz != nil {
		return f.techBiz()
	}
	if f.list == nil {
		return nil, nil
	}
	return f.list()
}

func (f *fakeUpstream) CreateGroup(_ context.Context, name, _ string) (techpass.Group, error) {
	f.calls = append(f.calls, "create")
	return f.create(name)
}

func (f *fakeUpstream) DeleteGroup(_ context.Context, id string) error {
	f.calls = append(f.calls, "delete "+id)
	return f.del(id)
}

// The member and update routes are not part of these cases: any call to
// them is recorded, and fails the case that did not expect it.

func (f *fakeUpstream) UpdateGroup(_ context.Context, id, _ string) (techpass.Group, error) {
	f.calls = append(f.calls, "update "+id)
	return techpass.Group{}, errors.New("unexpected call")
}

func (f *fakeUpstream) GetUser(_ context.Context, id string) (techpass.User, error) {
	f.calls = append(f.calls, "user "+id)
	return techpass.User{}, errors.New("unexpected call")
}

func (f *fakeUpstream) ListMembers(_ context.Context, id, _ string) (techpass.MemberPage, error) {
	f.calls = append(f.calls, "members "+id)
	return techpass.MemberPage{}, errors.New("unexpected call")
}

func (f *fakeUpstream) AddMember(_ context.Context, id, user string) error {
	f.calls = append(f.calls, "add "+user)
	return errors.New("unexpected call")
}

func (f *fakeUpstream) RemoveMember(_ context.Context, id, user string) error {
	f.calls = append(f.calls, "remove "+user)
	return errors.New("unexpected call")
}

const fullName = "SHIP:MOH:billing"

var existing = techpass.Group{ID: "g-1", Name: fullName, Created: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}

func createOp(attempts int) throttle.Operation {
	p, _ := json.Marshal(map[string]string{"fullName": fullName, "description": "d"})
	return throttle.Operation{ID: "op_1", Kind: groups.KindCreate, Target: fullName, Payload: p, Attempts: attempts}
}

func deleteOp(upstreamID string) throttle.Operation {
	p, _ := json.Marshal(map[string]string{"fullName": fullName, "upstreamId": upstreamID})
	return throttle.Operation{ID: "op_2", Kind: groups.KindDelete, Target: fullName, Payload: p, Attempts: 1}
}

func apiErr(status int, retryAfter time.Duration) error {
	return fmt.Errorf("techpass createGroup: %w", &techpass.Error{Status: status, RetryAfter: retryAfter, Message: "upstream says no"})
}

// TestExecutorOutcomes is the table of how every upstream answer maps to
// an outcome: done, retry (throttled or not, with the wait), or a clear
// failure, for creates and deletes.
func TestExecutorOutcomes(t *testing.T) {
	refused := &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}
	cases := []struct {
		name          string
		op            throttle.Operation
		up            fakeUpstream
		kind          throttle.OutcomeKind
		throttled     bool
		check         bool // a failed adoption check: not counted
		checkOnly     bool // the try sent only the adoption check: not an attempt
		after         time.Duration
		status        int    // of the failure
		reason        string // in Reason (retry) or Failure.Detail
		calls         string
		resultGroupID string
	}{
		{name: "create 201", op: createOp(1), up: fakeUpstream{create: func(string) (techpass.Group, error) { return existing, nil }},
			kind: throttle.Done, calls: "create", resultGroupID: "g-1"},
		{name: "create 429 waits Retry-After without spending a failure", op: createOp(1),
			up:   fakeUpstream{create: func(string) (techpass.Group, error) { return techpass.Group{}, apiErr(429, 3*time.Second) }},
			kind: throttle.Retry, throttled: true, after: 3 * time.Second, reason: "HTTP 429", calls: "create"},
		{name: "create 503", op: createOp(1), up: fakeUpstream{create: func(string) (techpass.Group, error) { return techpass.Group{}, apiErr(503, 0) }},
			kind: throttle.Retry, reason: "HTTP 503", calls: "create"},
		{name: "create 500 with Retry-After", op: createOp(1), up: fakeUpstream{create: func(string) (techpass.Group, error) { return techpass.Group{}, apiErr(500, time.Second) }},
			kind: throttle.Retry, after: time.Second, reason: "HTTP 500", calls: "create"},
		{name: "create timeout", op: createOp(1), up: fakeUpstream{create: func(string) (techpass.Group, error) {
			return techpass.Group{}, fmt.Errorf("request failed: %w", context.DeadlineExceeded)
		}}, kind: throttle.Retry, reason: "did not answer in time", calls: "create"},
		{name: "create connection refused", op: createOp(1), up: fakeUpstream{create: func(string) (techpass.Group, error) {
			return techpass.Group{}, fmt.Errorf("request failed: %w", refused)
		}}, kind: throttle.Retry, reason: "could not be reached", calls: "create"},
		{name: "create with refused credentials waits for the token backoff", op: createOp(1), up: fakeUpstream{create: func(string) (techpass.Group, error) {
			return techpass.Group{}, &techpass.TokenError{Status: 401, Code: "invalid_client", AADSTS: "AADSTS7000215", RetryAfter: 4 * time.Second}
		}}, kind: throttle.Retry, after: 4 * time.Second, reason: "invalid_client (AADSTS7000215, HTTP 401)", calls: "create"},
		{name: "create with an unreadable credential names no file", op: createOp(1), up: fakeUpstream{create: func(string) (techpass.Group, error) {
			return techpass.Group{}, &techpass.CredentialError{What: "client secret", RetryAfter: time.Second}
		}}, kind: throttle.Retry, after: time.Second, reason: "the gateway's TechPass client secret could not be used", calls: "create"},
		{name: "create 400 (e.g. group limit)", op: createOp(1), up: fakeUpstream{create: func(string) (techpass.Group, error) { return techpass.Group{}, apiErr(400, 0) }},
			kind: throttle.Fail, status: http.StatusUnprocessableEntity, reason: "upstream says no", calls: "create"},
		{name: "create 403", op: createOp(1), up: fakeUpstream{create: func(string) (techpass.Group, error) { return techpass.Group{}, apiErr(403, 0) }},
			kind: throttle.Fail, status: http.StatusBadGateway, reason: "credentials", calls: "create"},
		{name: "create 404", op: createOp(1), up: fakeUpstream{create: func(string) (techpass.Group, error) { return techpass.Group{}, apiErr(404, 0) }},
			kind: throttle.Fail, status: http.StatusBadGateway, reason: "HTTP 404", calls: "create"},
		{name: "create 409 of our own group adopts it", op: createOp(1), up: fakeUpstream{
			create: func(string) (techpass.Group, error) { return techpass.Group{}, apiErr(409, 0) },
			list: func() ([]techpass.Group, error) {
				return []techpass.Group{{ID: "x", Name: "SHIP:MOE:billing"}, existing}, nil
			},
		}, kind: throttle.Done, calls: "create list", resultGroupID: "g-1"},
		{name: "create 409 not in the list", op: createOp(1), up: fakeUpstream{
			create: func(string) (techpass.Group, error) { return techpass.Group{}, apiErr(409, 0) },
			list:   func() ([]techpass.Group, error) { return []techpass.Group{{ID: "x", Name: "SHIP:MOE:billing"}}, nil },
		}, kind: throttle.Fail, status: http.StatusConflict, calls: "create list list+techbiz"},
		{name: "create 409 for a TechBiz group: refused, never adopted", op: createOp(1), up: fakeUpstream{
			create:  func(string) (techpass.Group, error) { return techpass.Group{}, apiErr(409, 0) },
			techBiz: func() ([]techpass.Group, error) { return []techpass.Group{{ID: "tb", Name: fullName}}, nil },
		}, kind: throttle.Fail, status: http.StatusConflict, calls: "create list list+techbiz"},
		{name: "replayed create finds the group and adopts it", op: createOp(2), up: fakeUpstream{
			list: func() ([]techpass.Group, error) { return []techpass.Group{existing}, nil },
		}, kind: throttle.Done, checkOnly: true, calls: "list", resultGroupID: "g-1"},
		{name: "replayed create whose lookup is throttled", op: createOp(2), up: fakeUpstream{
			list: func() ([]techpass.Group, error) { return nil, apiErr(429, 2*time.Second) },
		}, kind: throttle.Retry, throttled: true, check: true, after: 2 * time.Second, checkOnly: true, calls: "list"},
		{name: "replayed create whose lookup fails is a failed check, not a failed attempt", op: createOp(2), up: fakeUpstream{
			list: func() ([]techpass.Group, error) { return nil, apiErr(503, 0) },
		}, kind: throttle.Retry, check: true, reason: "HTTP 503", checkOnly: true, calls: "list"},
		{name: "replayed create not found upstream, whose create fails, is a failed attempt", op: createOp(2), up: fakeUpstream{
			create: func(string) (techpass.Group, error) { return techpass.Group{}, apiErr(502, 0) },
		}, kind: throttle.Retry, reason: "HTTP 502", calls: "list create"},
		{name: "replayed create whose lookup meets refused credentials is a failure, but not an attempt", op: createOp(2), up: fakeUpstream{
			list: func() ([]techpass.Group, error) {
				return nil, &techpass.TokenError{Status: 401, Code: "invalid_client", RetryAfter: time.Second}
			},
		}, kind: throttle.Retry, after: time.Second, reason: "invalid_client", checkOnly: true, calls: "list"},
		{name: "replayed create whose lookup is refused with 401 is a failure, but not an attempt", op: createOp(2), up: fakeUpstream{
			list: func() ([]techpass.Group, error) { return nil, apiErr(401, 0) },
		}, kind: throttle.Retry, reason: "HTTP 401", checkOnly: true, calls: "list"},
		{name: "create 409 whose lookup fails is a failed check", op: createOp(1), up: fakeUpstream{
			create: func(string) (techpass.Group, error) { return techpass.Group{}, apiErr(409, 0) },
			list:   func() ([]techpass.Group, error) { return nil, apiErr(500, 0) },
		}, kind: throttle.Retry, check: true, reason: "HTTP 500", calls: "create list"},
		{name: "delete 204", op: deleteOp("g-1"), up: fakeUpstream{del: func(string) error { return nil }},
			kind: throttle.Done, calls: "delete g-1"},
		{name: "delete of a group already gone", op: deleteOp("g-1"), up: fakeUpstream{del: func(string) error { return apiErr(404, 0) }},
			kind: throttle.Done, calls: "delete g-1"},
		{name: "delete without id, not upstream", op: deleteOp(""), up: fakeUpstream{},
			kind: throttle.Done, calls: "list"},
		{name: "delete without id finds it", op: deleteOp(""), up: fakeUpstream{
			list: func() ([]techpass.Group, error) { return []techpass.Group{existing}, nil },
			del:  func(string) error { return nil },
		}, kind: throttle.Done, calls: "list delete g-1"},
		{name: "delete 429", op: deleteOp("g-1"), up: fakeUpstream{del: func(string) error { return apiErr(429, time.Second) }},
			kind: throttle.Retry, throttled: true, after: time.Second, calls: "delete g-1"},
		{name: "delete 502", op: deleteOp("g-1"), up: fakeUpstream{del: func(string) error { return apiErr(502, 0) }},
			kind: throttle.Retry, reason: "HTTP 502", calls: "delete g-1"},
		{name: "delete 403 (most likely a group TechBiz took over)", op: deleteOp("g-1"), up: fakeUpstream{del: func(string) error { return apiErr(403, 0) }},
			kind: throttle.Fail, status: http.StatusConflict, reason: "upstream says no", calls: "delete g-1"},
		{name: "delete 409", op: deleteOp("g-1"), up: fakeUpstream{del: func(string) error { return apiErr(409, 0) }},
			kind: throttle.Fail, status: http.StatusBadGateway, calls: "delete g-1"},
		{name: "delete 400", op: deleteOp("g-1"), up: fakeUpstream{del: func(string) error { return apiErr(400, 0) }},
			kind: throttle.Fail, status: http.StatusBadGateway, calls: "delete g-1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			up := tc.up
			out := groups.NewExecutor(&up, nil, nil, nil).Execute(context.Background(), tc.op)
			if out.Kind != tc.kind || out.Throttled != tc.throttled || out.Check != tc.check || out.CheckOnly != tc.checkOnly || out.RetryAfter != tc.after {
				t.Fatalf("outcome %+v; want kind %v throttled %v check %v check only %v after %v", out, tc.kind, tc.throttled, tc.check, tc.checkOnly, tc.after)
			}
			if got := strings.Join(up.calls, " "); got != tc.calls {
				t.Errorf("calls %q, want %q", got, tc.calls)
			}
			switch out.Kind {
			case throttle.Retry:
				if !strings.Contains(out.Reason, tc.reason) {
					t.Errorf("reason %q, want it to mention %q", out.Reason, tc.reason)
				}
				if len(out.Effects) != 1 {
					t.Errorf("a retry must carry the effect that undoes the pending state: %+v", out.Effects)
				}
			case throttle.Fail:
				if out.Failure == nil || out.Failure.Status != tc.status || !strings.Contains(out.Failure.Detail, tc.reason) {
					t.Errorf("failure %+v; want status %d mentioning %q", out.Failure, tc.status, tc.reason)
				}
			case throttle.Done:
				if tc.resultGroupID != "" {
					var r groups.Result
					if err := json.Unmarshal(out.Result, &r); err != nil || r.UpstreamID != tc.resultGroupID || r.FullName != fullName {
						t.Errorf("result %s (%v)", out.Result, err)
					}
				}
			}
		})
	}
}

// TestExecutorReasonsAreSanitized: a failure reason carries the status and
// TechPass's short message, never a body, and errors.Is still sees the
// cause.
func TestExecutorReasonsAreSanitized(t *testing.T) {
	err := fmt.Errorf("wrapped: %w", &techpass.Error{Status: 400, Message: "Group limit reached"})
	up := &fakeUpstream{create: func(string) (techpass.Group, error) { return techpass.Group{}, err }}
	out := groups.NewExecutor(up, nil, nil, nil).Execute(context.Background(), createOp(1))
	if out.Failure == nil || out.Failure.Detail != "TechPass refused to create the group (TechPass answered HTTP 400: Group limit reached)" {
		t.Errorf("detail %+v", out.Failure)
	}
	if retry, _, _ := techpass.Temporary(errors.Unwrap(err)); retry {
		t.Error("a 400 is not temporary")
	}
}
