package techpasssim_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/groupgate/groupgate/techpass"
	"github.com/groupgate/groupgate/techpass/techpasssim"
)

// TestTokenOutageWindow: the token endpoint answers 503
// temporarily_unavailable until TokenOutageUntil, then issues tokens again
// by itself; the window is measured on the simulator's clock.
func TestTokenOutageWindow(t *testing.T) {
	e := newEnv(t, techpasssim.Config{})
	if err := e.sim.SetFaults(techpasssim.Faults{TokenOutageUntil: e.clock.Now().Add(10 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	r := e.postForm(e.tokenURL(testDir), e.secretForm(shipClient, shipSecret))
	if r.status != http.StatusServiceUnavailable || r.tokenError(t).Error != "temporarily_unavailable" {
		t.Fatalf("during the window: %d %s", r.status, r.body)
	}
	e.clock.Advance(10 * time.Second)
	e.token(shipClient, shipSecret) // after the window
	if st := e.sim.Stats().Namespaces[ns]; st.TokenRequests != 2 || st.TokenFailures != 1 {
		t.Errorf("stats %+v", st.Counters)
	}
}

// TestTokenLifetimeAtRunTime: Faults.TokenLifetime changes expires_in and
// the expiry of tokens issued from then on; earlier tokens keep theirs.
func TestTokenLifetimeAtRunTime(t *testing.T) {
	e := newEnv(t, techpasssim.Config{TokenLifetime: time.Hour})
	long := e.token(shipClient, shipSecret)
	if err := e.sim.SetFaults(techpasssim.Faults{TokenLifetime: 3 * time.Second}); err != nil {
		t.Fatal(err)
	}
	r := e.postForm(e.tokenURL(testDir), e.secretForm(shipClient, shipSecret))
	var tr techpass.TokenResponse
	if err := json.Unmarshal(r.body, &tr); err != nil || tr.ExpiresIn != 3 {
		t.Fatalf("expires_in %d (%v), want 3", tr.ExpiresIn, err)
	}
	e.clock.Advance(3 * time.Second)
	wantStatus(t, e.paced(http.MethodGet, groupsPath(t, ns), shipKey, tr.AccessToken, nil), http.StatusUnauthorized, "")
	wantStatus(t, e.paced(http.MethodGet, groupsPath(t, ns), shipKey, long, nil), http.StatusOK, "")
	if err := (techpasssim.Faults{TokenLifetime: 500 * time.Millisecond}).Validate(); !errors.Is(err, techpasssim.ErrInvalidFaults) {
		t.Errorf("a sub-second lifetime must be refused: %v", err)
	}
}

func TestFaultsJSONNewFields(t *testing.T) {
	until := time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)
	f := techpasssim.Faults{TokenOutageUntil: until, TokenLifetime: 3 * time.Second}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if want := `"tokenOutageUntil":"2026-03-14T09:26:53Z","tokenLifetime":"3s"`; !strings.Contains(string(b), want) {
		t.Errorf("JSON %s lacks %s", b, want)
	}
	var back techpasssim.Faults
	if err := json.Unmarshal(b, &back); err != nil || !back.TokenOutageUntil.Equal(until) || back.TokenLifetime != 3*time.Second {
		t.Errorf("round trip %+v %v", back, err)
	}
	if err := json.Unmarshal([]byte(`{"tokenOutageUntil":"soon"}`), &back); err == nil || !strings.Contains(err.Error(), "tokenOutageUntil") {
		t.Errorf("bad time: %v", err)
	}
}

// TestSetCertificate: rotating the registered certificate revokes the old
// one; removing it is refused while it is the only credential; every
// assertion presented is recorded for canaries.
func TestSetCertificate(t *testing.T) {
	cert1, key1 := newCert(t)
	cert2, key2 := newCert(t)
	e := newEnv(t, techpasssim.Config{}, certNamespace(cert1))
	a1 := sign(t, jwt.SigningMethodRS256, key1, cert1, e.assertionClaims(certClient), nil)
	wantStatus(t, e.postForm(e.tokenURL(testDir), e.assertionForm(certClient, a1)), http.StatusOK, "")
	if err := e.sim.SetCertificate("CERT", cert2); err != nil {
		t.Fatal(err)
	}
	old := sign(t, jwt.SigningMethodRS256, key1, cert1, e.assertionClaims(certClient), nil)
	if r := e.postForm(e.tokenURL(testDir), e.assertionForm(certClient, old)); r.status != http.StatusUnauthorized {
		t.Errorf("the replaced certificate: %d", r.status)
	}
	a2 := sign(t, jwt.SigningMethodPS256, key2, cert2, e.assertionClaims(certClient), nil)
	wantStatus(t, e.postForm(e.tokenURL(testDir), e.assertionForm(certClient, a2)), http.StatusOK, "")
	if err := e.sim.SetCertificate("CERT", nil); !errors.Is(err, techpasssim.ErrInvalidNamespace) {
		t.Errorf("removing the only credential: %v", err)
	}
	if err := e.sim.SetCertificate("NOPE", cert2); !errors.Is(err, techpasssim.ErrUnknownNamespace) {
		t.Errorf("unknown namespace: %v", err)
	}
	if got := e.sim.ReceivedAssertions(); len(got) != 3 || got[0] != a1 || got[1] != old || got[2] != a2 {
		t.Errorf("received assertions: %d", len(got))
	}
}
