package techpasssim_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/groupgate/groupgate/internal/testkit"
	"github.com/groupgate/groupgate/techpass/techpasssim"
	"github.com/groupgate/groupgate/webhooks"
)

// receiver records signed deliveries, failing the first fail of them.
type receiver struct {
	mu     sync.Mutex
	fail   int
	bodies []map[string]any
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := webhooks.Verify(req.Header.Get(webhooks.SignatureHeader), b, [][]byte{[]byte("hook-secret")}, time.Now()); err != nil {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if r.fail > 0 {
		r.fail--
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	r.bodies = append(r.bodies, m)
}

func (r *receiver) received() []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]map[string]any(nil), r.bodies...)
}

// TestWebhooksOnUserChanges: deleting and updating users through the admin
// endpoints sends signed user-deleted and user-updated events, retried
// until accepted, and costs no Automation API request.
func TestWebhooksOnUserChanges(t *testing.T) {
	users := techpasssim.DemoUsers(2)
	sim := techpasssim.New(techpasssim.Config{Users: users})
	t.Cleanup(sim.StopWebhooks)
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	if err := sim.AddNamespace(techpasssim.Namespace{Name: "SHIP", DirectoryID: "d", ClientID: "c", ClientSecret: "s", APIKeys: []string{"k"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := sim.CreateGroupDirect("SHIP", "SHIP:MOH:billing", "", false); err != nil {
		t.Fatal(err)
	}
	if err := sim.AddMemberDirect("SHIP", "SHIP:MOH:billing", users[0].ID); err != nil {
		t.Fatal(err)
	}
	rec := &receiver{fail: 2}
	hook := httptest.NewServer(rec)
	t.Cleanup(hook.Close)
	if err := sim.SetWebhook("SHIP", techpasssim.Webhook{URL: hook.URL, Secret: "hook-secret", RetryEvery: 20 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("DELETE", srv.URL+"/_sim/users/"+users[0].ID, nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete user: %v %v", resp, err)
	}
	if _, err := sim.UpdateUser(users[1].ID, techpasssim.UserUpdate{Email: "new@example.gov.sg"}); err != nil {
		t.Fatal(err)
	}
	if !testkit.Poll(5*time.Second, 5*time.Millisecond, func() bool { return len(rec.received()) >= 2 }) {
		t.Fatalf("received %v; stats %+v", rec.received(), sim.WebhookStats("SHIP"))
	}
	st := sim.WebhookStats("SHIP")
	if st.Events != 2 || st.Delivered != 2 || st.Attempts != 4 || st.Pending != 0 {
		t.Errorf("stats %+v, want 2 events delivered in 4 attempts", st)
	}
	byEvent := map[string]map[string]any{}
	for _, b := range rec.received() {
		byEvent[b["event"].(string)] = b
	}
	if d := byEvent["user-deleted"]; d == nil || d["user"].(map[string]any)["id"] != users[0].ID || len(d["groups"].([]any)) != 1 {
		t.Errorf("user-deleted event = %v", d)
	}
	if u := byEvent["user-updated"]; u == nil || u["user"].(map[string]any)["email"] != "new@example.gov.sg" {
		t.Errorf("user-updated event = %v", u)
	}
	if got := sim.Stats().Namespaces["SHIP"].Requests; got != 0 {
		t.Errorf("webhooks counted %d Automation API requests", got)
	}
	if members := sim.Members("SHIP", "SHIP:MOH:billing"); len(members) != 0 {
		t.Errorf("the deleted user is still a member: %v", members)
	}
	if err := sim.DeleteUser(users[0].ID); !errors.Is(err, techpasssim.ErrUnknownUser) {
		t.Errorf("deleting again: %v", err)
	}
}
