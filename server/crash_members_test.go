package server_test

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/groupgate/groupgate/api"
	"github.com/groupgate/groupgate/internal/testkit"
	"github.com/groupgate/groupgate/techpass/techpasssim"
)

// TestCrashDuringMemberChange kills the gateway in the middle of a member
// change carried out one upstream request per step. Started again, it
// resumes from the last recorded step: every user ends up a member exactly
// as asked, the mirror agrees with TechPass, and no request overlapped or
// broke the interval.
func TestCrashDuringMemberChange(t *testing.T) {
	rig := newCrashRig(t)
	g := rig.client(rig.start())
	op := g.create(crashProject, "crew")
	if done := g.await(crashProject, op.Id, 20*time.Second); done.State != api.Succeeded {
		t.Fatalf("create: %s %+v", done.State, done.Error)
	}
	users := techpasssim.DemoUsers(24)
	var add []string
	for _, u := range users {
		add = append(add, u.Email)
	}
	r := g.do("POST", membersPath("SHIP", "MOH", "crew"), crashProject, map[string]any{"users": add})
	if r.status != http.StatusAccepted {
		t.Fatalf("add members: %d %s", r.status, r.body)
	}
	r.decode(t, &op)

	// Kill once some members are in, with a request likely in flight.
	if !testkit.Poll(30*time.Second, 5*time.Millisecond, func() bool { return len(rig.up.sim.Members("SHIP", "SHIP:MOH:crew")) >= 3 }) {
		t.Fatal("members never started to arrive")
	}
	for deadline := time.Now().Add(2 * (crashInterval + crashPaceGuard)); rig.up.stats("SHIP").InFlight == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	p := rig.procs[len(rig.procs)-1]
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatalf("SIGKILL: %v", err)
	}
	if exited, _ := p.waitExit(10 * time.Second); !exited {
		t.Fatal("the killed process did not exit within 10s")
	}
	atKill := len(rig.up.sim.Members("SHIP", "SHIP:MOH:crew"))
	if atKill >= len(users) {
		t.Fatalf("all %d members were in before the kill; the test proved nothing", atKill)
	}
	t.Logf("members at the kill: %d of %d", atKill, len(users))

	g = rig.client(rig.start())
	done := g.await(crashProject, op.Id, 60*time.Second)
	if done.State != api.Succeeded || done.Result == nil || done.Result.Members == nil {
		t.Fatalf("member change after the restart: %s %+v", done.State, done.Error)
	}
	if n := len(done.Result.Members.Added); n != len(users) {
		t.Errorf("result lists %d added users, want %d", n, len(users))
	}
	want := simEmails(rig.up.sim.Members("SHIP", "SHIP:MOH:crew"))
	var asked []string
	for _, u := range users {
		asked = append(asked, u.Email)
	}
	slices.Sort(asked)
	if !slices.Equal(want, asked) {
		t.Fatalf("TechPass members %v, want %v", want, asked)
	}
	got, _ := g.members(crashProject, "crew", 0, "")
	if !slices.Equal(emails(got), want) {
		t.Fatalf("mirror members %v, TechPass %v", emails(got), want)
	}
	if s := rig.up.stats("SHIP"); s.Violations != 0 || s.MaxInFlight > 1 {
		t.Fatalf("upstream saw %d violations, %d requests in flight at once", s.Violations, s.MaxInFlight)
	}
	rig.stopGracefully(rig.procs[len(rig.procs)-1])
}
