package server_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/groupgate/groupgate/api"
	"github.com/groupgate/groupgate/config"
	"github.com/groupgate/groupgate/internal/testkit"
	"github.com/groupgate/groupgate/techpass"
	"github.com/groupgate/groupgate/techpass/techpasssim"
)

// The resilience tests run the real server against the simulator through
// faults, a token endpoint outage, credential rotation and certificate
// assertions, and prove with the simulator's counters that no operation was
// lost, TechPass's rules were kept, and no credential leaked.

// TestResilienceFaults: with 20% server errors, 5% throttling and random
// latency, 100 operations over two tenants all succeed, with no rate
// violation and never two requests in flight.
func TestResilienceFaults(t *testing.T) {
	g := startGateway(t, gatewayOptions{
		projects: map[string][]string{"SHIP": {"MOH"}, "OTHER": {"MOH"}},
		mutate: func(c *config.Config) {
			// A bound high enough that 20% server errors cannot exhaust it
			// by chance (a retried create costs two calls, a list and a
			// create); the bound itself is tested by TestSecretsNeverLeak.
			c.Retry.MaxFailures = 12
		},
	})
	if err := g.up.sim.SetFaults(techpasssim.Faults{
		ServerErrorRate: 0.20, ThrottleRate: 0.05, RetryAfter: time.Second,
		LatencyMin: 0, LatencyMax: 15 * time.Millisecond,
	}); err != nil {
		t.Fatal(err)
	}
	const perTenant = 25 // creates, then as many deletes: 100 operations in all
	tenants := []string{"SHIP/MOH", "OTHER/MOH"}
	g.createThenDelete(tenants, "f", perTenant, 30*time.Second)
	for _, ns := range []string{"SHIP", "OTHER"} {
		st := g.up.stats(ns)
		t.Logf("%s: %d requests, %d server errors, %d throttled, %d token requests", ns, st.Requests, st.ServerErrors, st.Throttled, st.TokenRequests)
		if st.Violations != 0 || st.MaxInFlight != 1 {
			t.Errorf("%s: %d violations, max in flight %d; want 0 and 1", ns, st.Violations, st.MaxInFlight)
		}
		if st.ServerErrors == 0 || st.Throttled == 0 {
			t.Errorf("%s: the faults were not injected: %+v", ns, st.Counters)
		}
		for name, n := range st.CreatesByName {
			if n != 1 {
				t.Errorf("%s: %s created %d times", ns, name, n)
			}
		}
		if gs := g.up.sim.Groups(ns); len(gs) != 0 {
			t.Errorf("%s: %d groups left upstream", ns, len(gs))
		}
	}
	g.stop()
	assertNoLeaks(t, g)
}

// TestResilienceTokenOutage: the token endpoint is down for longer than the
// renewal window but shorter than the token's life. The current token
// serves through it, the renewal is retried with backoff and succeeds once
// the endpoint is back: no operation fails, and none meets a 401.
func TestResilienceTokenOutage(t *testing.T) {
	g := startGateway(t, gatewayOptions{projects: map[string][]string{"SHIP": {"MOH"}}})
	const lifetime = 4 * time.Second // renewed with 2 s left (half a short life), used until 3.6 s
	if err := g.up.sim.SetFaults(techpasssim.Faults{TokenLifetime: lifetime}); err != nil {
		t.Fatal(err)
	}
	if op := g.await("SHIP/MOH", g.create("SHIP/MOH", "warm").Id, 10*time.Second); op.State != api.Succeeded {
		t.Fatalf("warm-up: %+v", op)
	}
	issued := len(g.up.sim.IssuedTokens())
	// The token was issued before now, so the outage covers its renewal
	// point (2 s after issue) and ends well before it expires (4 s).
	start := time.Now()
	const outage = 2500 * time.Millisecond
	if err := g.up.sim.SetFaults(techpasssim.Faults{TokenLifetime: lifetime, TokenOutageUntil: start.Add(outage)}); err != nil {
		t.Fatal(err)
	}
	var duringOutage int
	var sawReadyDuringOutage bool
	n := workload(t, g, "SHIP/MOH", "o", start.Add(outage+1500*time.Millisecond), func(op api.Operation) {
		at := time.Now()
		if at.After(start.Add(2*time.Second)) && at.Before(start.Add(outage)) {
			duringOutage++
			if !sawReadyDuringOutage {
				// A temporary outage does not make the service unready.
				rd := readiness(t, g)
				sawReadyDuringOutage = rd.Status == api.Ready && rd.Checks["upstream:SHIP"].Status == api.CheckStatusOk
			}
		}
	})
	st := g.up.stats("SHIP")
	t.Logf("%d operations, %d during the outage past the renewal point; token requests %d, failures %d", n, duringOutage, st.TokenRequests, st.TokenFailures)
	if duringOutage == 0 {
		t.Error("no operation ran during the outage past the renewal point: the test proves nothing")
	}
	if st.TokenFailures == 0 || len(g.up.sim.IssuedTokens()) <= issued {
		t.Errorf("want renewals refused during the outage and a new token after it: %+v", st.Counters)
	}
	if st.Unauthorized != 0 || st.Violations != 0 || st.MaxInFlight != 1 {
		t.Errorf("stats %+v, max in flight %d", st.Counters, st.MaxInFlight)
	}
	if !sawReadyDuringOutage {
		t.Error("/readyz was not ready with upstream:SHIP ok during a temporary token outage")
	}
	g.stop()
	logs := g.logs.String()
	if strings.Count(logs, "TechPass token endpoint unavailable") != 1 || strings.Count(logs, "TechPass token endpoint issued a token again") != 1 {
		t.Errorf("the outage must be logged once when it begins and once when it ends")
	}
	assertNoLeaks(t, g)
}

// TestResilienceSecretRotation: mid-run the secret file is replaced and the
// old secret revoked at TechPass. The next renewal uses the new secret; no
// operation fails.
func TestResilienceSecretRotation(t *testing.T) {
	g := startGateway(t, gatewayOptions{
		projects: map[string][]string{"SHIP": {"MOH"}},
		mutate:   func(c *config.Config) { c.Credentials.CheckInterval = config.Duration(20 * time.Millisecond) },
	})
	if err := g.up.sim.SetFaults(techpasssim.Faults{TokenLifetime: 3 * time.Second}); err != nil {
		t.Fatal(err)
	}
	secretFile := g.up.tps["SHIP"].ClientSecretFile
	newSecret := "secret-SHIP-rotated-" + randomWord(t)
	start := time.Now()
	// The worst order: TechPass revokes the old secret before the secret
	// manager has written the new one, and a renewal falls in between and
	// is refused. The current token serves meanwhile, so operations go on
	// and the service stays ready.
	var issuedAtRotation, failuresAtRevocation int
	stage := 0 // 0: before, 1: revoked, 2: new secret written
	n := workload(t, g, "SHIP/MOH", "r", start.Add(5*time.Second), func(api.Operation) {
		switch {
		case stage == 0 && time.Since(start) > time.Second:
			failuresAtRevocation = g.up.stats("SHIP").TokenFailures
			if err := g.up.sim.SetClientSecret("SHIP", newSecret); err != nil {
				t.Fatal(err)
			}
			stage = 1
		case stage == 1 && g.up.stats("SHIP").TokenFailures > failuresAtRevocation:
			if rd := readiness(t, g); rd.Status != api.Ready || rd.Checks["upstream:SHIP"].Status != api.CheckStatusOk {
				t.Errorf("refused while the token is valid must not make the service unready: %+v", rd)
			}
			issuedAtRotation = len(g.up.sim.IssuedTokens())
			writeAtomically(t, secretFile, newSecret)
			stage = 2
		}
	})
	if stage != 2 {
		t.Fatalf("the rotation did not complete (stage %d): no renewal was refused after the revocation", stage)
	}
	st := g.up.stats("SHIP")
	t.Logf("%d operations; token requests %d, failures %d", n, st.TokenRequests, st.TokenFailures)
	if got := len(g.up.sim.IssuedTokens()); got <= issuedAtRotation {
		t.Errorf("no token was issued with the new secret (%d issued, %d at rotation)", got, issuedAtRotation)
	}
	if st.Violations != 0 || st.MaxInFlight != 1 || st.Unauthorized != 0 || st.TokenFailures == 0 {
		t.Errorf("stats %+v", st.Counters)
	}
	if rd := readiness(t, g); rd.Status != api.Ready || rd.Checks["upstream:SHIP"].Status != api.CheckStatusOk {
		t.Errorf("after the rotation: %+v", rd)
	}
	g.stop()
	logs := g.logs.String()
	for _, want := range []string{"TechPass credentials reloaded", "TechPass token endpoint refused the client credentials", "TechPass token endpoint issued a token again"} {
		if strings.Count(logs, want) != 1 {
			t.Errorf("%q logged %d times, want once", want, strings.Count(logs, want))
		}
	}
	assertNoLeaks(t, g, newSecret)
}

// TestResilienceSIGHUP: a SIGHUP re-reads the credentials at once and
// requests a token with them, long before the periodic check.
func TestResilienceSIGHUP(t *testing.T) {
	g := startGateway(t, gatewayOptions{
		projects: map[string][]string{"SHIP": {"MOH"}},
		mutate:   func(c *config.Config) { c.Credentials.CheckInterval = config.Duration(time.Hour) },
	})
	if op := g.await("SHIP/MOH", g.create("SHIP/MOH", "before").Id, 10*time.Second); op.State != api.Succeeded {
		t.Fatalf("before: %+v", op)
	}
	readiness(t, g) // the server serves, so its SIGHUP handler is installed
	newSecret := "secret-SHIP-hup-" + randomWord(t)
	if err := g.up.sim.SetClientSecret("SHIP", newSecret); err != nil {
		t.Fatal(err)
	}
	writeAtomically(t, g.up.tps["SHIP"].ClientSecretFile, newSecret)
	before := g.up.stats("SHIP")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := g.up.stats("SHIP")
		if st.TokenRequests > before.TokenRequests && st.TokenFailures == before.TokenFailures {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no successful token request after SIGHUP: before %+v, now %+v", before.Counters, st.Counters)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if op := g.await("SHIP/MOH", g.create("SHIP/MOH", "after").Id, 10*time.Second); op.State != api.Succeeded {
		t.Fatalf("after: %+v", op)
	}
	g.stop()
	assertNoLeaks(t, g, newSecret)
}

// TestResilienceCertificate: a tenant configured with a certificate and key
// authenticates with certificate client assertions; the simulator refuses
// the same assertion replayed, and one forged with another key. A rotated
// certificate is picked up without a restart, and a refused one becomes a
// clear /readyz state.
func TestResilienceCertificate(t *testing.T) {
	dir := t.TempDir()
	cert1 := newPEMCert(t)
	certFile, keyFile := filepath.Join(dir, "ship.crt"), filepath.Join(dir, "ship.key")
	writeAtomically(t, certFile, string(cert1.CertPEM))
	writeAtomically(t, keyFile, string(cert1.KeyPEM))
	g := startGateway(t, gatewayOptions{
		projects: map[string][]string{"SHIP": {"MOH"}},
		mutate: func(c *config.Config) {
			c.Credentials.CheckInterval = config.Duration(20 * time.Millisecond)
			for i := range c.Tenants {
				tp := &c.Tenants[i].TechPass
				tp.ClientSecretFile, tp.ClientCertificateFile, tp.ClientKeyFile, tp.ClientAssertionAlg = "", certFile, keyFile, techpass.AlgPS256
			}
		},
	})
	// TechPass knows the certificate only: secrets are refused from now on.
	// Tokens live a second: renewed every half second, with a new
	// assertion each time.
	if err := g.up.sim.SetFaults(techpasssim.Faults{TokenLifetime: time.Second}); err != nil {
		t.Fatal(err)
	}
	if err := g.up.sim.SetCertificate("SHIP", cert1.Cert); err != nil {
		t.Fatal(err)
	}
	if err := g.up.sim.SetClientSecret("SHIP", ""); err != nil {
		t.Fatal(err)
	}
	if op := g.await("SHIP/MOH", g.create("SHIP/MOH", "cert").Id, 10*time.Second); op.State != api.Succeeded {
		t.Fatalf("create with a certificate: %+v (%s)", op, errorOf(op))
	}
	assertions := g.up.sim.ReceivedAssertions()
	if st := g.up.stats("SHIP"); len(assertions) == 0 || st.TokenFailures != 0 {
		t.Fatalf("%d assertions, stats %+v", len(assertions), st.Counters)
	}
	tok, _, err := jwt.NewParser().ParseUnverified(assertions[0], jwt.MapClaims{})
	if err != nil || tok.Method.Alg() != "PS256" {
		t.Fatalf("assertion alg: %v %v", tok, err)
	}

	// Replayed, or forged with another key, an assertion is refused.
	tp := g.up.tps["SHIP"]
	form := url.Values{
		"grant_type": {"client_credentials"}, "client_id": {tp.ClientID}, "scope": {techpasssim.Scope(tp.APIURL)},
		"client_assertion_type": {techpass.AssertionTypeJWTBearer}, "client_assertion": {assertions[0]},
	}
	if status := postToken(t, tp.TokenURL, form); status != http.StatusUnauthorized {
		t.Errorf("replayed assertion: %d, want 401", status)
	}
	claims := tok.Claims.(jwt.MapClaims)
	claims["jti"] = rand.Text()
	forged := jwt.NewWithClaims(jwt.SigningMethodPS256, claims)
	for k, v := range tok.Header {
		forged.Header[k] = v
	}
	signed, err := forged.SignedString(newPEMCert(t).RSAKey())
	if err != nil {
		t.Fatal(err)
	}
	form.Set("client_assertion", signed)
	if status := postToken(t, tp.TokenURL, form); status != http.StatusUnauthorized {
		t.Errorf("forged assertion: %d, want 401", status)
	}

	// Rotation: the new key lands before its certificate (an unusable pair
	// for a moment: the old pair stays in use), TechPass swaps them, and a
	// reload requests a token with the new pair at once.
	cert2 := newPEMCert(t)
	writeAtomically(t, keyFile, string(cert2.KeyPEM))
	time.Sleep(100 * time.Millisecond) // several checks see the half-rotated pair
	writeAtomically(t, certFile, string(cert2.CertPEM))
	if err := g.up.sim.SetCertificate("SHIP", cert2.Cert); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	g.srv.Reload(context.Background())
	if op := g.await("SHIP/MOH", g.create("SHIP/MOH", "rotated").Id, 10*time.Second); op.State != api.Succeeded {
		t.Fatalf("create after the certificate rotation: %+v (%s)", op, errorOf(op))
	}
	if rd := readiness(t, g); rd.Checks["upstream:SHIP"].Status != api.CheckStatusOk {
		t.Errorf("after rotation: %+v", rd)
	}

	// TechPass no longer accepts the certificate. Once the last token has
	// expired the tenant cannot call TechPass: /readyz says so, with the
	// token endpoint's code and never a credential.
	if err := g.up.sim.SetCertificate("SHIP", newPEMCert(t).Cert); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the last token expires
	g.srv.Reload(context.Background())
	r := g.do("GET", "/readyz", "", nil)
	var rd api.Readiness
	r.decode(t, &rd)
	chk := rd.Checks["upstream:SHIP"]
	if r.status != http.StatusServiceUnavailable || chk.Status != api.CheckStatusFailing || chk.Detail == nil ||
		!strings.HasPrefix(*chk.Detail, "token endpoint: invalid_client (AADSTS700027, HTTP 401) since ") ||
		!strings.Contains(*chk.Detail, "no valid access token") {
		t.Errorf("readyz with a refused certificate: %d %s", r.status, r.body)
	}
	if rd.Checks["store"].Status != api.CheckStatusOk {
		t.Errorf("store check: %+v", rd)
	}
	g.stop()
	if n := strings.Count(g.logs.String(), "TechPass token endpoint refused the client credentials"); n != 1 {
		t.Errorf("the refusal was logged %d times, want once", n)
	}
	if !strings.Contains(g.logs.String(), "TechPass credential changed but is unusable") {
		t.Error("the half-rotated pair was not logged")
	}
	assertNoLeaks(t, g, string(cert1.KeyPEM), string(cert2.KeyPEM), signed)
}

// workload runs create-then-delete pairs in project who, one operation at
// a time, until the deadline, calling each (if not nil) after every
// operation. Every operation must succeed. It returns how many ran.
func workload(t *testing.T, g *gateway, who, prefix string, until time.Time, each func(api.Operation)) int {
	t.Helper()
	tenant, project, _ := strings.Cut(who, "/")
	n := 0
	for i := 0; time.Now().Before(until); i++ {
		name := fmt.Sprintf("%s%03d", prefix, i)
		op := g.await(who, g.create(who, name).Id, 10*time.Second)
		if op.State != api.Succeeded {
			t.Fatalf("create %s: %+v (%s)", name, op, errorOf(op))
		}
		n++
		if each != nil {
			each(op)
		}
		r := g.do("DELETE", groupsPath(tenant, project)+"/"+name, who, nil)
		if r.status != http.StatusAccepted {
			t.Fatalf("delete %s: %d %s", name, r.status, r.body)
		}
		var del api.Operation
		r.decode(t, &del)
		if del = g.await(who, del.Id, 10*time.Second); del.State != api.Succeeded {
			t.Fatalf("delete %s: %+v (%s)", name, del, errorOf(del))
		}
		n++
		if each != nil {
			each(del)
		}
	}
	return n
}

func errorOf(op api.Operation) string {
	if op.Error != nil && op.Error.Detail != nil {
		return *op.Error.Detail
	}
	if op.LastError != nil {
		return *op.LastError
	}
	return ""
}

// readiness polls /readyz until it answers with an upstream check for
// every tenant (they appear once the runtimes are built).
func readiness(t *testing.T, g *gateway) api.Readiness {
	t.Helper()
	r := g.do("GET", "/readyz", "", nil)
	var rd api.Readiness
	r.decode(t, &rd)
	if (r.status == http.StatusOK) != (rd.Status == api.Ready) {
		t.Errorf("readyz status %d with %s", r.status, r.body)
	}
	return rd
}

// writeAtomically replaces path as a secret manager does: a new file
// renamed over the old one.
func writeAtomically(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func postToken(t *testing.T, tokenURL string, form url.Values) int {
	t.Helper()
	resp, err := http.PostForm(tokenURL, form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// newPEMCert returns a self-signed certificate with its RSA key, for the
// gateway's TechPass client certificate.
func newPEMCert(t *testing.T) testkit.Cert {
	t.Helper()
	return testkit.NewCert(t, testkit.CertOptions{CommonName: "groupgate SHIP"})
}

// assertNoLeaks is the canary of every resilience run: no client secret
// (including rotated ones), API key, access token, client assertion (or its
// signature) or private key (or any line of its PEM) appears in any
// response body or header the gateway gave, or in any log line.
func assertNoLeaks(t *testing.T, g *gateway, extra ...string) {
	t.Helper()
	secrets := map[string]string{}
	for k, v := range g.up.secrets {
		secrets[k] = v
	}
	for i, tok := range g.up.sim.IssuedTokens() {
		secrets[fmt.Sprintf("access token %d", i)] = tok
	}
	for i, a := range g.up.sim.ReceivedAssertions() {
		secrets[fmt.Sprintf("assertion %d", i)] = a
		if dot := strings.LastIndexByte(a, '.'); dot > 0 {
			secrets[fmt.Sprintf("assertion %d signature", i)] = a[dot+1:]
		}
	}
	for i, e := range extra {
		secrets[fmt.Sprintf("extra secret %d", i)] = strings.TrimSpace(e)
		if strings.Contains(e, "PRIVATE KEY") {
			for j, line := range strings.Split(e, "\n") {
				if len(line) >= 40 && !strings.HasPrefix(line, "-----") {
					secrets[fmt.Sprintf("extra secret %d line %d", i, j)] = line
				}
			}
		}
	}
	if len(g.up.sim.IssuedTokens()) == 0 {
		t.Fatal("the run issued no token: the canary proves nothing")
	}
	bodies, logs := g.bodies.String(), g.logs.String()
	if !strings.Contains(logs, "operation succeeded") || !strings.Contains(bodies, `"fullName"`) {
		t.Fatal("logs or responses were not captured: the canary proves nothing")
	}
	for what, secret := range secrets {
		if secret == "" {
			continue
		}
		for where, text := range map[string]string{"responses": bodies, "logs": logs} {
			if strings.Contains(text, secret) {
				t.Errorf("%s leaked into %s", what, where)
			}
		}
	}
}
