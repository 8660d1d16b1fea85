package techpasssim_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/groupgate/groupgate/techpass"
	"github.com/groupgate/groupgate/techpass/techpasssim"
)

func TestTokenWithSecret(t *testing.T) {
	e := newEnv(t, techpasssim.Config{})
	r := e.postForm(e.tokenURL(testDir), e.secretForm(shipClient, shipSecret))
	wantStatus(t, r, http.StatusOK, "")
	tr := decode[techpass.TokenResponse](t, r)
	if tr.TokenType != "Bearer" || tr.ExpiresIn != 1199 || tr.ExtExpiresIn != 1199 {
		t.Errorf("token response = %+v, want Bearer with expires_in 1199", tr)
	}
	if len(tr.AccessToken) < 43 { // 32 bytes, base64url
		t.Errorf("access token %d characters, want at least 43", len(tr.AccessToken))
	}
	if got := r.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
	if got := e.sim.IssuedTokens(); !slices.Equal(got, []string{tr.AccessToken}) {
		t.Errorf("IssuedTokens = %q, want the one token", got)
	}
	if again := e.token(shipClient, shipSecret); again == tr.AccessToken {
		t.Error("two token requests got the same token")
	}
	st := e.sim.Stats().Namespaces[ns]
	if st.TokenRequests != 2 || st.TokenFailures != 0 {
		t.Errorf("token requests/failures = %d/%d, want 2/0", st.TokenRequests, st.TokenFailures)
	}
}

// TestTokenWithOAuth2Library proves the simulator understands what
// golang.org/x/oauth2 sends, with credentials in the body and in Basic auth
// (where the library URL-encodes them).
func TestTokenWithOAuth2Library(t *testing.T) {
	secret := "a+b/c=d&e%f g~" // every character Basic auth encoding touches
	ship := shipNamespace()
	ship.ClientSecret = secret
	e := newEnv(t, techpasssim.Config{}, ship)
	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInParams, oauth2.AuthStyleInHeader} {
		cc := clientcredentials.Config{
			ClientID:     shipClient,
			ClientSecret: secret,
			TokenURL:     e.tokenURL(testDir),
			Scopes:       []string{e.scope()},
			AuthStyle:    style,
		}
		ctx := context.WithValue(context.Background(), oauth2.HTTPClient, e.srv.Client())
		tok, err := cc.Token(ctx)
		if err != nil {
			t.Fatalf("auth style %d: %v", style, err)
		}
		if !slices.Contains(e.sim.IssuedTokens(), tok.AccessToken) || tok.Expiry.IsZero() {
			t.Errorf("auth style %d: token %+v not issued by the simulator or without expiry", style, tok)
		}
	}
}

// formEdit changes a valid secret token request of SHIP.
type formEdit func(e *env, f url.Values)

func set(k, v string) formEdit { return func(_ *env, f url.Values) { f.Set(k, v) } }
func add(k, v string) formEdit { return func(_ *env, f url.Values) { f.Add(k, v) } }
func del(k string) formEdit    { return func(_ *env, f url.Values) { f.Del(k) } }

func TestTokenErrors(t *testing.T) {
	cert, _ := newCert(t)
	const assertion = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
	tests := []struct {
		name   string
		dir    string              // default testDir
		edits  []formEdit          // applied to a valid request
		prep   func(*http.Request) // applied to the HTTP request
		faults techpasssim.Faults
		status int
		err    string
		code   int
	}{
		{name: "unknown directory", dir: "00000000-0000-0000-0000-000000000000", status: 400, err: "invalid_request", code: 90002},
		{name: "missing grant type", edits: []formEdit{del("grant_type")}, status: 400, err: "invalid_request", code: 900144},
		{name: "password grant", edits: []formEdit{set("grant_type", "password")}, status: 400, err: "unsupported_grant_type", code: 70003},
		{name: "missing client id", edits: []formEdit{del("client_id")}, status: 400, err: "invalid_request", code: 900144},
		{name: "unknown client", edits: []formEdit{set("client_id", "not-a-client")}, status: 400, err: "unauthorized_client", code: 700016},
		{name: "wrong secret", edits: []formEdit{set("client_secret", shipSecret+"x")}, status: 401, err: "invalid_client", code: 7000215},
		{name: "secret of another client", edits: []formEdit{set("client_secret", dockSecret)}, status: 401, err: "invalid_client", code: 7000215},
		{name: "secret for a certificate-only client", edits: []formEdit{set("client_id", certClient)}, status: 401, err: "invalid_client", code: 7000215},
		{name: "no credential", edits: []formEdit{del("client_secret")}, status: 401, err: "invalid_client", code: 7000218},
		{name: "secret in the query string only", edits: []formEdit{del("client_secret")},
			prep:   func(req *http.Request) { req.URL.RawQuery = url.Values{"client_secret": {shipSecret}}.Encode() },
			status: 401, err: "invalid_client", code: 7000218},
		{name: "secret twice", edits: []formEdit{add("client_secret", shipSecret)}, status: 400, err: "invalid_request", code: 9002313},
		{name: "secret in body and Basic auth", prep: func(req *http.Request) { req.SetBasicAuth(shipClient, shipSecret) },
			status: 400, err: "invalid_request", code: 9002313},
		{name: "client ids differ in body and Basic auth", edits: []formEdit{set("client_id", dockClient), del("client_secret")},
			prep:   func(req *http.Request) { req.SetBasicAuth(shipClient, shipSecret) },
			status: 400, err: "invalid_request", code: 9002313},
		{name: "wrong secret in Basic auth", edits: []formEdit{del("client_id"), del("client_secret")},
			prep:   func(req *http.Request) { req.SetBasicAuth(shipClient, shipSecret+"!") },
			status: 401, err: "invalid_client", code: 7000215},
		{name: "secret and assertion",
			edits:  []formEdit{set("client_assertion", assertion), set("client_assertion_type", techpasssim.AssertionTypeJWTBearer)},
			status: 400, err: "invalid_request", code: 9002313},
		{name: "JSON body", prep: func(req *http.Request) { req.Header.Set("Content-Type", "application/json") },
			status: 400, err: "invalid_request", code: 900144},
		{name: "missing scope", edits: []formEdit{del("scope")}, status: 400, err: "invalid_request", code: 900144},
		{name: "scope of another API", edits: []formEdit{set("scope", "https://api.techpass.gov.sg/.default")},
			status: 400, err: "invalid_scope", code: 1002012},
		{name: "scope without .default", edits: []formEdit{func(e *env, f url.Values) { f.Set("scope", e.srv.URL) }},
			status: 400, err: "invalid_scope", code: 1002012},
		{name: "two scopes", edits: []formEdit{func(e *env, f url.Values) { f.Set("scope", e.scope()+" openid") }},
			status: 400, err: "invalid_scope", code: 1002012},
		{name: "token outage", faults: techpasssim.Faults{TokenOutage: true}, status: 503, err: "temporarily_unavailable", code: 90033},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, techpasssim.Config{Faults: tt.faults}, shipNamespace(), dockNamespace(), certNamespace(cert))
			dir := tt.dir
			if dir == "" {
				dir = testDir
			}
			form := e.secretForm(shipClient, shipSecret)
			for _, edit := range tt.edits {
				edit(e, form)
			}
			req, err := http.NewRequest(http.MethodPost, e.tokenURL(dir), strings.NewReader(form.Encode()))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tt.prep != nil {
				tt.prep(req)
			}
			r := e.do(req)
			if r.status != tt.status {
				t.Fatalf("status = %d, want %d; body %s", r.status, tt.status, r.body)
			}
			te := r.tokenError(t)
			if te.Error != tt.err || !slices.Equal(te.Codes, []int{tt.code}) {
				t.Errorf("error = %s %v, want %s [%d]", te.Error, te.Codes, tt.err, tt.code)
			}
			if want := "AADSTS" + strconv.Itoa(tt.code) + ": "; !strings.HasPrefix(te.Description, want) {
				t.Errorf("description %q does not start with %q", te.Description, want)
			}
			for _, secret := range []string{shipSecret, dockSecret, assertion} {
				if strings.Contains(string(r.body), secret) {
					t.Errorf("error body carries a credential: %s", r.body)
				}
			}
			if len(e.sim.IssuedTokens()) != 0 {
				t.Error("a token was issued")
			}
			if tot := e.sim.Stats().Totals; tot.TokenRequests != 1 || tot.TokenFailures != 1 {
				t.Errorf("token requests/failures = %d/%d, want 1/1", tot.TokenRequests, tot.TokenFailures)
			}
		})
	}
}

func TestTokenScope(t *testing.T) {
	t.Run("host compared case-insensitively", func(t *testing.T) {
		e := newEnv(t, techpasssim.Config{})
		f := e.secretForm(shipClient, shipSecret)
		f.Set("scope", strings.ToUpper(e.scope()))
		wantStatus(t, e.postForm(e.tokenURL(testDir), f), http.StatusOK, "")
	})
	t.Run("APIURL overrides the request host", func(t *testing.T) {
		const api = "https://api.stg.techpass.suite.gov.sg"
		e := newEnv(t, techpasssim.Config{APIURL: api})
		f := e.secretForm(shipClient, shipSecret)
		f.Set("scope", api+"/.default")
		wantStatus(t, e.postForm(e.tokenURL(testDir), f), http.StatusOK, "")
		if r := e.postForm(e.tokenURL(testDir), e.secretForm(shipClient, shipSecret)); r.status != http.StatusBadRequest {
			t.Errorf("scope of the simulator's own host: status %d, want 400", r.status)
		}
	})
}

func TestSetClientSecret(t *testing.T) {
	e := newEnv(t, techpasssim.Config{})
	before := e.token(shipClient, shipSecret)
	const rotated = "ship-secret-rotated-Qw2~eR4.tY6"
	if err := e.sim.SetClientSecret(ns, rotated); err != nil {
		t.Fatal(err)
	}
	r := e.postForm(e.tokenURL(testDir), e.secretForm(shipClient, shipSecret))
	if r.status != http.StatusUnauthorized || r.tokenError(t).Error != "invalid_client" {
		t.Fatalf("old secret after rotation: %d %s, want 401 invalid_client", r.status, r.body)
	}
	e.token(shipClient, rotated)
	// Tokens issued before the rotation stay valid until they expire.
	wantStatus(t, e.paced(http.MethodGet, groupsPath(t, ns), shipKey, before, nil), http.StatusOK, "")

	if err := e.sim.SetClientSecret("NOPE", "x"); !errors.Is(err, techpasssim.ErrUnknownNamespace) {
		t.Errorf("unknown namespace: %v, want ErrUnknownNamespace", err)
	}
	if err := e.sim.SetClientSecret(ns, ""); !errors.Is(err, techpasssim.ErrInvalidNamespace) {
		t.Errorf("removing the only credential: %v, want ErrInvalidNamespace", err)
	}
}
