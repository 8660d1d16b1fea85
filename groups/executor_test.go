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

	"github.com/groupgate/groupgate/dispatch"
	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/internal/testkit"
	"github.com/groupgate/groupgate/queue"
	"github.com/groupgate/groupgate/techpass"
	"github.com/groupgate/groupgate/techpass/techpasssim"
)

// fakeUpstream is a hand-written fake of groups.Upstream.
type fakeUpstream struct {
	list    func() ([]techpass.Group, error)
	techBiz func() ([]techpass.Group, error)
	create  func(name string) (techpass.Group, error)
	del     func(id string) error
	update  func(id string) error
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

func (f *fakeUpstream) UpdateGroup(_ context.Context, id, _ string) (techpass.Group, error) {
	f.calls = append(f.calls, "update "+id)
	if f.update == nil {
		return techpass.Group{}, errors.New("unexpected call")
	}
	return techpass.Group{}, f.update(id)
}

// The member routes are not part of these cases: any call to them is
// recorded, and fails the case that did not expect it.

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

func createOp(attempts int) queue.Operation {
	return operation(groups.KindCreate, map[string]string{"fullName": fullName, "description": "d"}, attempts)
}

func deleteOp(upstreamID string) queue.Operation {
	return operation(groups.KindDelete, map[string]string{"fullName": fullName, "upstreamId": upstreamID}, 1)
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
		op            queue.Operation
		up            fakeUpstream
		kind          dispatch.OutcomeKind
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
			kind: dispatch.Done, calls: "create", resultGroupID: "g-1"},
		{name: "create 429 waits Retry-After without spending a failure", op: createOp(1),
			up:   fakeUpstream{create: func(string) (techpass.Group, error) { return techpass.Group{}, apiErr(429, 3*time.Second) }},
			kind: dispatch.Retry, throttled: true, after: 3 * time.Second, reason: "HTTP 429", calls: "create"},
		{name: "create 503", op: createOp(1), up: fakeUpstream{create: func(string) (techpass.Group, error) { return techpass.Group{}, apiErr(503, 0) }},
			kind: dispatch.Retry, reason: "HTTP 503", calls: "create"},
		{name: "create 500 with Retry-After", op: createOp(1), up: fakeUpstream{create: func(string) (techpass.Group, error) { return techpass.Group{}, apiErr(500, time.Second) }},
			kind: dispatch.Retry, after: time.Second, reason: "HTTP 500", calls: "create"},
		{name: "create timeout", op: createOp(1), up: fakeUpstream{create: func(string) (techpass.Group, error) {
			return techpass.Group{}, fmt.Errorf("request failed: %w", context.DeadlineExceeded)
		}}, kind: dispatch.Retry, reason: "did not answer in time", calls: "create"},
		{name: "create connection refused", op: createOp(1), up: fakeUpstream{create: func(string) (techpass.Group, error) {
			return techpass.Group{}, fmt.Errorf("request failed: %w", refused)
		}}, kind: dispatch.Retry, reason: "could not be reached", calls: "create"},
		{name: "create with refused credentials waits for the token backoff", op: createOp(1), up: fakeUpstream{create: func(string) (techpass.Group, error) {
			return techpass.Group{}, &techpass.TokenError{Status: 401, Code: "invalid_client", AADSTS: "AADSTS7000215", RetryAfter: 4 * time.Second}
		}}, kind: dispatch.Retry, after: 4 * time.Second, reason: "invalid_client (AADSTS7000215, HTTP 401)", calls: "create"},
		{name: "create with an unreadable credential names no file", op: createOp(1), up: fakeUpstream{create: func(string) (techpass.Group, error) {
			return techpass.Group{}, &techpass.CredentialError{What: "client secret", RetryAfter: time.Second}
		}}, kind: dispatch.Retry, after: time.Second, reason: "the gateway's TechPass client secret could not be used", calls: "create"},
		{name: "create 400 (e.g. group limit)", op: createOp(1), up: fakeUpstream{create: func(string) (techpass.Group, error) { return techpass.Group{}, apiErr(400, 0) }},
			kind: dispatch.Fail, status: http.StatusUnprocessableEntity, reason: "upstream says no", calls: "create"},
		{name: "create 403", op: createOp(1), up: fakeUpstream{create: func(string) (techpass.Group, error) { return techpass.Group{}, apiErr(403, 0) }},
			kind: dispatch.Fail, status: http.StatusBadGateway, reason: "credentials", calls: "create"},
		{name: "create 404", op: createOp(1), up: fakeUpstream{create: func(string) (techpass.Group, error) { return techpass.Group{}, apiErr(404, 0) }},
			kind: dispatch.Fail, status: http.StatusBadGateway, reason: "HTTP 404", calls: "create"},
		{name: "create 409 of our own group adopts it", op: createOp(1), up: fakeUpstream{
			create: func(string) (techpass.Group, error) { return techpass.Group{}, apiErr(409, 0) },
			list: func() ([]techpass.Group, error) {
				return []techpass.Group{{ID: "x", Name: "SHIP:MOE:billing"}, existing}, nil
			},
		}, kind: dispatch.Done, calls: "create list", resultGroupID: "g-1"},
		{name: "create 409 not in the list", op: createOp(1), up: fakeUpstream{
			create: func(string) (techpass.Group, error) { return techpass.Group{}, apiErr(409, 0) },
			list:   func() ([]techpass.Group, error) { return []techpass.Group{{ID: "x", Name: "SHIP:MOE:billing"}}, nil },
		}, kind: dispatch.Fail, status: http.StatusConflict, calls: "create list list+techbiz"},
		{name: "create 409 for a TechBiz group: refused, never adopted", op: createOp(1), up: fakeUpstream{
			create:  func(string) (techpass.Group, error) { return techpass.Group{}, apiErr(409, 0) },
			techBiz: func() ([]techpass.Group, error) { return []techpass.Group{{ID: "tb", Name: fullName}}, nil },
		}, kind: dispatch.Fail, status: http.StatusConflict, calls: "create list list+techbiz"},
		{name: "replayed create finds the group and adopts it", op: createOp(2), up: fakeUpstream{
			list: func() ([]techpass.Group, error) { return []techpass.Group{existing}, nil },
		}, kind: dispatch.Done, checkOnly: true, calls: "list", resultGroupID: "g-1"},
		{name: "replayed create whose lookup is throttled", op: createOp(2), up: fakeUpstream{
			list: func() ([]techpass.Group, error) { return nil, apiErr(429, 2*time.Second) },
		}, kind: dispatch.Retry, throttled: true, check: true, after: 2 * time.Second, checkOnly: true, calls: "list"},
		{name: "replayed create whose lookup fails is a failed check, not a failed attempt", op: createOp(2), up: fakeUpstream{
			list: func() ([]techpass.Group, error) { return nil, apiErr(503, 0) },
		}, kind: dispatch.Retry, check: true, reason: "HTTP 503", checkOnly: true, calls: "list"},
		{name: "replayed create not found upstream, whose create fails, is a failed attempt", op: createOp(2), up: fakeUpstream{
			create: func(string) (techpass.Group, error) { return techpass.Group{}, apiErr(502, 0) },
		}, kind: dispatch.Retry, reason: "HTTP 502", calls: "list create"},
		{name: "replayed create whose lookup meets refused credentials is a failure, but not an attempt", op: createOp(2), up: fakeUpstream{
			list: func() ([]techpass.Group, error) {
				return nil, &techpass.TokenError{Status: 401, Code: "invalid_client", RetryAfter: time.Second}
			},
		}, kind: dispatch.Retry, after: time.Second, reason: "invalid_client", checkOnly: true, calls: "list"},
		{name: "replayed create whose lookup is refused with 401 is a failure, but not an attempt", op: createOp(2), up: fakeUpstream{
			list: func() ([]techpass.Group, error) { return nil, apiErr(401, 0) },
		}, kind: dispatch.Retry, reason: "HTTP 401", checkOnly: true, calls: "list"},
		{name: "create 409 whose lookup fails is a failed check", op: createOp(1), up: fakeUpstream{
			create: func(string) (techpass.Group, error) { return techpass.Group{}, apiErr(409, 0) },
			list:   func() ([]techpass.Group, error) { return nil, apiErr(500, 0) },
		}, kind: dispatch.Retry, check: true, reason: "HTTP 500", calls: "create list"},
		{name: "delete 204", op: deleteOp("g-1"), up: fakeUpstream{del: func(string) error { return nil }},
			kind: dispatch.Done, calls: "delete g-1"},
		{name: "delete of a group already gone", op: deleteOp("g-1"), up: fakeUpstream{del: func(string) error { return apiErr(404, 0) }},
			kind: dispatch.Done, calls: "delete g-1"},
		{name: "delete without id, not upstream", op: deleteOp(""), up: fakeUpstream{},
			kind: dispatch.Done, calls: "list"},
		{name: "delete without id finds it", op: deleteOp(""), up: fakeUpstream{
			list: func() ([]techpass.Group, error) { return []techpass.Group{existing}, nil },
			del:  func(string) error { return nil },
		}, kind: dispatch.Done, calls: "list delete g-1"},
		{name: "delete 429", op: deleteOp("g-1"), up: fakeUpstream{del: func(string) error { return apiErr(429, time.Second) }},
			kind: dispatch.Retry, throttled: true, after: time.Second, calls: "delete g-1"},
		{name: "delete 502", op: deleteOp("g-1"), up: fakeUpstream{del: func(string) error { return apiErr(502, 0) }},
			kind: dispatch.Retry, reason: "HTTP 502", calls: "delete g-1"},
		{name: "delete 403 (most likely a group TechBiz took over)", op: deleteOp("g-1"), up: fakeUpstream{del: func(string) error { return apiErr(403, 0) }},
			kind: dispatch.Fail, status: http.StatusConflict, reason: "upstream says no", calls: "delete g-1"},
		{name: "delete 409", op: deleteOp("g-1"), up: fakeUpstream{del: func(string) error { return apiErr(409, 0) }},
			kind: dispatch.Fail, status: http.StatusBadGateway, calls: "delete g-1"},
		{name: "delete 400", op: deleteOp("g-1"), up: fakeUpstream{del: func(string) error { return apiErr(400, 0) }},
			kind: dispatch.Fail, status: http.StatusBadGateway, calls: "delete g-1"},
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
			case dispatch.Retry:
				if !strings.Contains(out.Reason, tc.reason) {
					t.Errorf("reason %q, want it to mention %q", out.Reason, tc.reason)
				}
				if len(out.Effects) != 1 {
					t.Errorf("a retry must carry the effect that undoes the pending state: %+v", out.Effects)
				}
			case dispatch.Fail:
				if out.Failure == nil || out.Failure.Status != tc.status || !strings.Contains(out.Failure.Detail, tc.reason) {
					t.Errorf("failure %+v; want status %d mentioning %q", out.Failure, tc.status, tc.reason)
				}
			case dispatch.Done:
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

// The tests below run the Executor against the in-process TechPass
// simulator through a real techpass.Client, with an in-memory mirror.

// memMirror is an in-memory groups.Mirror: the groups by full name, their
// members, the users already resolved (by lower-cased e-mail and by id)
// and the users TechPass reported deleted.
type memMirror struct {
	groups  map[string]groups.Group
	members map[string][]groups.User
	users   map[string]groups.User
	deleted map[string]groups.DeletedUser
}

func newMemMirror(gs ...groups.Group) *memMirror {
	m := &memMirror{groups: map[string]groups.Group{}, members: map[string][]groups.User{},
		users: map[string]groups.User{}, deleted: map[string]groups.DeletedUser{}}
	for _, g := range gs {
		m.groups[g.Name.String()] = g
	}
	return m
}

func (m *memMirror) Group(_ context.Context, n groups.Name) (groups.Group, error) {
	g, ok := m.groups[n.String()]
	if !ok {
		return groups.Group{}, fmt.Errorf("group %s: %w", n, groups.ErrNotFound)
	}
	return g, nil
}

func (m *memMirror) ListMembers(_ context.Context, n groups.Name, _ groups.PageQuery) ([]groups.User, bool, error) {
	return m.members[n.String()], false, nil
}

func (m *memMirror) KnownUsers(_ context.Context, _ string, ids []string) (map[string]groups.User, error) {
	return pick(m.users, ids), nil
}

func (m *memMirror) DeletedUsers(_ context.Context, _ string, ids []string) (map[string]groups.DeletedUser, error) {
	return pick(m.deleted, ids), nil
}

// pick returns the entries of m under ids.
func pick[V any](m map[string]V, ids []string) map[string]V {
	out := map[string]V{}
	for _, id := range ids {
		if v, ok := m[id]; ok {
			out[id] = v
		}
	}
	return out
}

// simFixture is an Executor whose upstream is a techpass.Client talking to
// a simulator with namespace SHIP and the first three demo users.
type simFixture struct {
	sim    *techpasssim.Simulator
	mirror *memMirror
	clock  *testkit.Clock
	exec   *groups.Executor
	ann    techpass.User // demo user 1
	bob    techpass.User // demo user 2
}

const simInterval = 5 * time.Millisecond

func newSimFixture(t *testing.T, cfg techpasssim.Config, mirror *memMirror) *simFixture {
	t.Helper()
	users := techpasssim.DemoUsers(3)
	cfg.Interval, cfg.Users = simInterval, users
	sim, client := newSimClient(t, cfg)
	clock := testkit.NewClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	return &simFixture{sim: sim, mirror: mirror, clock: clock, exec: groups.NewExecutor(client, mirror, clock.Now, nil), ann: users[0], bob: users[1]}
}

// execute carries op out once.
func (f *simFixture) execute(op queue.Operation) groups.Outcome {
	return f.exec.Execute(context.Background(), op)
}

// run carries op out as its dispatcher would: again with each step's
// progress, until an outcome other than Continue. It returns that outcome
// and the steps'.
func (f *simFixture) run(t *testing.T, op queue.Operation) (groups.Outcome, []groups.Outcome) {
	t.Helper()
	var steps []groups.Outcome
	for range 20 {
		op.Attempts++
		out := f.execute(op)
		if out.Kind != dispatch.Continue {
			return out, steps
		}
		steps = append(steps, out)
		op.Progress, op.Attempts = out.Progress, 0
	}
	t.Fatalf("operation still going after 20 steps: %+v", steps)
	return groups.Outcome{}, nil
}

// requests returns how many requests the simulator received on route.
func (f *simFixture) requests(route techpass.RouteName) int {
	return f.sim.Stats().Namespaces["SHIP"].ByRoute[route]
}

// mirrored returns the group as the mirror holds it once created upstream.
func (f *simFixture) mirrored(t *testing.T, g techpass.Group) groups.Group {
	t.Helper()
	n, err := groups.ParseFullName(groups.NewValidator(), g.Name)
	if err != nil {
		t.Fatal(err)
	}
	mg := groups.Group{Name: n, Description: g.Description, State: groups.Active, UpstreamID: g.ID, CreatedAt: g.Created}
	f.mirror.groups[g.Name] = mg
	return mg
}

func (f *simFixture) createDirect(t *testing.T, name string, dynamic bool) techpass.Group {
	t.Helper()
	g, err := f.sim.CreateGroupDirect("SHIP", name, "before", dynamic)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// operation returns an operation of kind on fullName with payload encoded
// as the Service stores it.
func operation(kind string, payload any, attempts int) queue.Operation {
	p, _ := json.Marshal(payload)
	return queue.Operation{ID: "op_1", Kind: kind, Target: fullName, Payload: p, Attempts: attempts,
		CreatedAt: time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)}
}

func membersOp(add, remove []string) queue.Operation {
	return operation(groups.KindMembers, map[string]any{"fullName": fullName, "add": add, "remove": remove}, 0)
}

func updateOp(description string) queue.Operation {
	return operation(groups.KindUpdate, map[string]string{"fullName": fullName, "description": description, "previous": "before"}, 1)
}

// wantFailure fails t unless out is a failure with this status and title
// whose detail mentions each of details.
func wantFailure(t *testing.T, out groups.Outcome, status int, title string, details ...string) {
	t.Helper()
	if out.Kind != dispatch.Fail || out.Failure == nil || out.Failure.Status != status || out.Failure.Title != title {
		t.Fatalf("outcome %+v (failure %+v); want failed %d %q", out, out.Failure, status, title)
	}
	for _, d := range details {
		if !strings.Contains(out.Failure.Detail, d) {
			t.Errorf("detail %q does not mention %q", out.Failure.Detail, d)
		}
	}
}

// TestExecutorCreateAgainstTechPass: a create makes the group (its members
// known: none), and its replay after an unclear end (the first attempt's
// outcome lost, as in a crash) finds the group and adopts it without a
// second create.
func TestExecutorCreateAgainstTechPass(t *testing.T) {
	f := newSimFixture(t, techpasssim.Config{}, newMemMirror())
	n := groups.Name{Tenant: "SHIP", Project: "MOH", Group: "billing"}
	first := f.execute(createOp(1))
	up := f.sim.Groups("SHIP")
	if first.Kind != dispatch.Done || len(up) != 1 || up[0].Name != fullName || up[0].Description != "d" {
		t.Fatalf("create: outcome %+v, TechPass holds %+v", first, up)
	}
	want := groups.Created{Name: n, UpstreamID: up[0].ID, At: f.clock.Now(), MembersKnown: true, Description: "d"}
	if len(first.Effects) != 1 || first.Effects[0] != want {
		t.Errorf("effects %+v, want %+v", first.Effects, want)
	}
	if r, ok, err := groups.DecodeResult(first.Result); !ok || err != nil || r.UpstreamID != up[0].ID || !r.CreatedAt.Equal(up[0].Created) {
		t.Errorf("result %+v (%v)", r, err)
	}

	replay := f.execute(createOp(2))
	want.MembersKnown = false // adopted: its members are unknown
	if replay.Kind != dispatch.Done || !replay.CheckOnly || len(replay.Effects) != 1 || replay.Effects[0] != want {
		t.Fatalf("replay: %+v; want done by the check alone, adopting %+v", replay, want)
	}
	st := f.sim.Stats().Namespaces["SHIP"]
	if st.CreatesByName[fullName] != 1 || st.DuplicateCreates != 0 || st.ByRoute[techpass.RouteCreateGroup] != 1 {
		t.Errorf("creates by name %v, duplicates %d, create requests %d; want the group created once", st.CreatesByName, st.DuplicateCreates, st.ByRoute[techpass.RouteCreateGroup])
	}
}

// TestExecutorCreateFindsGroupAgainstTechPass: a first attempt whose name
// TechPass already holds (409), visible in the namespace's list, adopts
// that group; its members are unknown.
func TestExecutorCreateFindsGroupAgainstTechPass(t *testing.T) {
	f := newSimFixture(t, techpasssim.Config{}, newMemMirror())
	g := f.createDirect(t, fullName, false)
	out := f.execute(createOp(1))
	want := groups.Created{Name: groups.Name{Tenant: "SHIP", Project: "MOH", Group: "billing"}, UpstreamID: g.ID, At: f.clock.Now(), Description: "before"}
	if out.Kind != dispatch.Done || out.CheckOnly || len(out.Effects) != 1 || out.Effects[0] != want {
		t.Fatalf("outcome %+v; want done, adopting %+v", out, want)
	}
	if st := f.sim.Stats().Namespaces["SHIP"]; st.DuplicateCreates != 1 || len(f.sim.Groups("SHIP")) != 1 {
		t.Errorf("duplicate creates %d, groups %+v; want the one refused create and the one group", st.DuplicateCreates, f.sim.Groups("SHIP"))
	}
}

// TestExecutorDeleteAgainstTechPass: a delete removes the group; one that
// finds it gone (404), or not in the namespace's list, counts as done.
func TestExecutorDeleteAgainstTechPass(t *testing.T) {
	f := newSimFixture(t, techpasssim.Config{}, newMemMirror())
	g := f.createDirect(t, fullName, false)
	n := groups.Name{Tenant: "SHIP", Project: "MOH", Group: "billing"}
	for i, op := range []queue.Operation{deleteOp(g.ID), deleteOp(g.ID), deleteOp("")} {
		out := f.execute(op)
		if out.Kind != dispatch.Done || len(out.Effects) != 1 || out.Effects[0] != (groups.Deleted{Name: n}) {
			t.Fatalf("delete %d: %+v; want done, Deleted", i+1, out)
		}
	}
	if len(f.sim.Groups("SHIP")) != 0 || f.requests(techpass.RouteDeleteGroup) != 2 || f.requests(techpass.RouteListGroups) != 1 {
		t.Errorf("TechPass holds %+v after %d deletes and %d lists; want none after 2 and 1", f.sim.Groups("SHIP"),
			f.requests(techpass.RouteDeleteGroup), f.requests(techpass.RouteListGroups))
	}
}

// TestExecutorUpdateAgainstTechPass: an update sets the description in
// TechPass; one of a group TechBiz took over is refused (403) as such and
// undoes the pending description.
func TestExecutorUpdateAgainstTechPass(t *testing.T) {
	f := newSimFixture(t, techpasssim.Config{}, newMemMirror())
	mg := f.mirrored(t, f.createDirect(t, fullName, false))
	out := f.execute(updateOp("after"))
	want := groups.Updated{Name: mg.Name, Operation: "op_1", Description: "after", At: f.clock.Now()}
	if out.Kind != dispatch.Done || len(out.Effects) != 1 || out.Effects[0] != want {
		t.Fatalf("update: %+v; want done, %+v", out, want)
	}
	if got := f.sim.Groups("SHIP")[0].Description; got != "after" {
		t.Errorf("TechPass holds description %q", got)
	}

	if err := f.sim.SetTechBiz("SHIP", fullName, true); err != nil {
		t.Fatal(err)
	}
	out = f.execute(updateOp("again"))
	wantFailure(t, out, http.StatusConflict, "Group managed by TechBiz", "TechPass refused to update the group", "HTTP 403")
	undo := groups.UpdateFailed{Name: mg.Name, Operation: "op_1", Previous: "before", At: f.clock.Now()}
	if len(out.Effects) != 1 || out.Effects[0] != undo {
		t.Errorf("effects %+v, want %+v", out.Effects, undo)
	}
}

// TestExecutorMembersAgainstTechPass: a member change resolves the user
// TechPass must look up in a step of its own, then adds and removes one
// user per step, each step's progress carried to the next, and ends with
// the result.
func TestExecutorMembersAgainstTechPass(t *testing.T) {
	f := newSimFixture(t, techpasssim.Config{}, newMemMirror())
	mg := f.mirrored(t, f.createDirect(t, fullName, false))
	if err := f.sim.AddMemberDirect("SHIP", fullName, f.bob.ID); err != nil {
		t.Fatal(err)
	}
	ann := groups.User{ID: f.ann.ID, Email: f.ann.Email, DisplayName: f.ann.DisplayName}
	bob := groups.User{ID: f.bob.ID, Email: f.bob.Email, DisplayName: f.bob.DisplayName}
	f.mirror.users[bob.ID] = bob // known: no lookup

	out, steps := f.run(t, membersOp([]string{ann.Email}, []string{bob.ID}))
	at := f.clock.Now()
	wantSteps := [][]groups.Effect{
		{groups.UsersResolved{Tenant: "SHIP", Users: []groups.User{ann}}},
		{groups.MembersAdded{Name: mg.Name, Users: []groups.User{ann}, At: at}},
	}
	if len(steps) != len(wantSteps) {
		t.Fatalf("%d steps, want %d: %+v", len(steps), len(wantSteps), steps)
	}
	for i, s := range steps {
		if fmt.Sprint(s.Effects) != fmt.Sprint(wantSteps[i]) || len(s.Progress) == 0 {
			t.Errorf("step %d: effects %+v, progress %s; want %+v and progress", i+1, s.Effects, s.Progress, wantSteps[i])
		}
	}
	wantLast := []groups.Effect{groups.MembersRemoved{Name: mg.Name, UserIDs: []string{bob.ID}, At: at}, groups.MembersSettled{Name: mg.Name, QueuedAt: time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)}}
	if out.Kind != dispatch.Done || fmt.Sprint(out.Effects) != fmt.Sprint(wantLast) {
		t.Fatalf("last: %+v; want done with %+v", out, wantLast)
	}
	r, ok, err := groups.DecodeMembersResult(out.Result)
	if !ok || err != nil || len(r.Added) != 1 || r.Added[0].ID != ann.ID || len(r.Removed) != 1 || r.Removed[0].ID != bob.ID || len(r.Unchanged) != 0 {
		t.Errorf("result %+v (%v)", r, err)
	}
	if got := f.sim.Members("SHIP", fullName); len(got) != 1 || got[0].ID != ann.ID {
		t.Errorf("TechPass members %+v, want ann alone", got)
	}
	if f.requests(techpass.RouteGetUser) != 1 || f.requests(techpass.RouteAddMember) != 1 || f.requests(techpass.RouteRemoveMember) != 1 {
		t.Errorf("requests %v; want one lookup, one add, one remove", f.sim.Stats().Namespaces["SHIP"].ByRoute)
	}
}

// TestExecutorRefusalsAgainstTechPass: TechPass's refusals become clear
// failures: a 400 is the caller's (422), a 403 to a create is the
// gateway's credentials (502), a 403 to a change of a dynamic group or of
// one TechBiz manages says so (409), an unknown user is 422 before any
// change.
func TestExecutorRefusalsAgainstTechPass(t *testing.T) {
	t.Run("create 400: the namespace's group limit", func(t *testing.T) {
		f := newSimFixture(t, techpasssim.Config{GroupLimit: 1}, newMemMirror())
		f.createDirect(t, "SHIP:MOH:other", false)
		out := f.execute(createOp(1))
		wantFailure(t, out, http.StatusUnprocessableEntity, "Rejected by TechPass", "HTTP 400", "group limit of 1")
		if len(out.Effects) != 1 || out.Effects[0] != (groups.CreateFailed{Name: groups.Name{Tenant: "SHIP", Project: "MOH", Group: "billing"}}) {
			t.Errorf("effects %+v, want the reservation released", out.Effects)
		}
	})
	t.Run("create 409: a TechBiz group of the name is never adopted", func(t *testing.T) {
		f := newSimFixture(t, techpasssim.Config{}, newMemMirror())
		f.createDirect(t, fullName, false)
		if err := f.sim.SetTechBiz("SHIP", fullName, true); err != nil {
			t.Fatal(err)
		}
		wantFailure(t, f.execute(createOp(1)), http.StatusConflict, "Group managed by TechBiz", "does not manage or adopt TechBiz groups")
	})
	t.Run("create 403: credentials refused", func(t *testing.T) {
		f := newSimFixture(t, techpasssim.Config{}, newMemMirror())
		if err := f.sim.SetAPIKeys("SHIP", "another-key"); err != nil {
			t.Fatal(err)
		}
		wantFailure(t, f.execute(createOp(1)), http.StatusBadGateway, "Forbidden by TechPass", "credentials")
	})
	t.Run("delete 403: TechBiz", func(t *testing.T) {
		f := newSimFixture(t, techpasssim.Config{}, newMemMirror())
		g := f.createDirect(t, fullName, false)
		if err := f.sim.SetTechBiz("SHIP", fullName, true); err != nil {
			t.Fatal(err)
		}
		wantFailure(t, f.execute(deleteOp(g.ID)), http.StatusConflict, "Group managed by TechBiz", "TechBiz", "HTTP 403")
	})
	t.Run("members 403: dynamic group", func(t *testing.T) {
		f := newSimFixture(t, techpasssim.Config{}, newMemMirror())
		f.mirrored(t, f.createDirect(t, fullName, true))
		out, _ := f.run(t, membersOp([]string{f.ann.ID}, nil))
		wantFailure(t, out, http.StatusConflict, "Members not changeable through the API", "dynamic group", "HTTP 403", "no member was changed")
	})
	t.Run("members: unknown user", func(t *testing.T) {
		f := newSimFixture(t, techpasssim.Config{}, newMemMirror())
		f.mirrored(t, f.createDirect(t, fullName, false))
		out, _ := f.run(t, membersOp([]string{f.ann.ID, "nobody@example.gov.sg"}, nil))
		wantFailure(t, out, http.StatusUnprocessableEntity, "Unknown user", `"nobody@example.gov.sg"`, "no member of SHIP:MOH:billing was changed")
		if f.requests(techpass.RouteAddMember) != 0 {
			t.Error("a member was added although one user is unknown")
		}
	})
}

// TestExecutorTransientAgainstTechPass: a 5xx is retried as a failure, a
// 429 as a throttling answer with its Retry-After; both carry the effects
// that undo the operation if the dispatcher gives up.
func TestExecutorTransientAgainstTechPass(t *testing.T) {
	undo := []groups.Effect{groups.CreateFailed{Name: groups.Name{Tenant: "SHIP", Project: "MOH", Group: "billing"}}}
	for _, tc := range []struct {
		faults    techpasssim.Faults
		throttled bool
		after     time.Duration
		reason    string
	}{
		{techpasssim.Faults{ServerErrorRate: 1}, false, 0, "TechPass answered HTTP 50"},
		{techpasssim.Faults{ThrottleRate: 1, RetryAfter: 2 * time.Second}, true, 2 * time.Second, "TechPass answered HTTP 429"},
	} {
		f := newSimFixture(t, techpasssim.Config{}, newMemMirror())
		if err := f.sim.SetFaults(tc.faults); err != nil {
			t.Fatal(err)
		}
		out := f.execute(createOp(1))
		if out.Kind != dispatch.Retry || out.Throttled != tc.throttled || out.RetryAfter != tc.after || !strings.HasPrefix(out.Reason, tc.reason) ||
			fmt.Sprint(out.Effects) != fmt.Sprint(undo) {
			t.Errorf("%+v: outcome %+v; want retry, throttled %v, after %v, reason %q, effects %+v", tc.faults, out, tc.throttled, tc.after, tc.reason, undo)
		}
	}
}

// TestExecutorUndecodable: an operation of an unknown kind, or whose
// payload does not decode, fails at once, clearly, without a request; one
// of a known kind releases its pending state.
func TestExecutorUndecodable(t *testing.T) {
	f := newSimFixture(t, techpasssim.Config{}, newMemMirror())
	unknown := operation("group.rename", map[string]string{"fullName": fullName}, 1)
	wantFailure(t, f.execute(unknown), http.StatusInternalServerError, "Unknown operation", `operation kind "group.rename" is not supported`)
	corrupt := createOp(1)
	corrupt.Payload = []byte(`{"fullName":`)
	out := f.execute(corrupt)
	wantFailure(t, out, http.StatusInternalServerError, "Corrupt operation", "could not be read")
	if len(out.Effects) != 1 || out.Effects[0] != (groups.CreateFailed{Name: groups.Name{Tenant: "SHIP", Project: "MOH", Group: "billing"}}) {
		t.Errorf("effects %+v, want the reservation released", out.Effects)
	}
	if n := f.sim.Stats().Namespaces["SHIP"].Requests; n != 0 {
		t.Errorf("%d requests to TechPass, want none", n)
	}
}

// TestExecutorEndings: the failures the dispatcher decides itself are
// worded by the executor as the clients see them.
func TestExecutorEndings(t *testing.T) {
	e := groups.NewExecutor(nil, nil, nil, nil)
	cases := []struct {
		got, want *queue.Failure
	}{
		{e.RetriesSpent(createOp(3), 30*time.Minute+400*time.Millisecond, "TechPass answered HTTP 503"), &queue.Failure{
			Status: 502, Title: "Upstream unavailable", Detail: "TechPass did not succeed within 30m0s of retries; last error: TechPass answered HTTP 503"}},
		{e.RetriesSpent(createOp(3), 90*time.Second, ""), &queue.Failure{
			Status: 502, Title: "Upstream unavailable", Detail: "TechPass did not succeed within 1m30s of retries"}},
		{e.Unworkable(createOp(1)), &queue.Failure{Status: 500, Title: "Internal error"}},
	}
	for _, tc := range cases {
		if *tc.got != *tc.want {
			t.Errorf("failure %+v, want %+v", *tc.got, *tc.want)
		}
	}
}

// TestExecutorUpdateRefusedOtherwise: an update TechPass refuses with a
// status of no meaning of its own fails as a TechPass error and undoes the
// pending description, the undo committed as the effect it is.
func TestExecutorUpdateRefusedOtherwise(t *testing.T) {
	n := groups.Name{Tenant: "SHIP", Project: "MOH", Group: "billing"}
	mirror := newMemMirror(groups.Group{Name: n, State: groups.Active, UpstreamID: "g-1"})
	up := &fakeUpstream{update: func(string) error { return apiErr(409, 0) }}
	clock := testkit.NewClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	out := groups.NewExecutor(up, mirror, clock.Now, nil).Execute(context.Background(), updateOp("after"))
	wantFailure(t, out, http.StatusBadGateway, "TechPass error", "TechPass could not update the group", "HTTP 409")
	undo := groups.UpdateFailed{Name: n, Operation: "op_1", Previous: "before", At: clock.Now()}
	if len(out.Effects) != 1 || out.Effects[0] != undo {
		t.Errorf("effects %#v, want %#v", out.Effects, undo)
	}
}
