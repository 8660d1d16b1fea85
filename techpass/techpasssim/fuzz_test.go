package techpasssim_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/groupgate/groupgate/techpass/techpasssim"
)

// The fuzz targets serve requests in process (httptest.NewRecorder) for
// speed; the host of such a request is example.com.
const fuzzHost = "http://example.com"

// postToken sends a token request for testDir to sim in process.
func postToken(sim *techpasssim.Simulator, body, user, pass string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/"+testDir+"/oauth2/v2.0/token", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" || pass != "" {
		req.SetBasicAuth(user, pass)
	}
	rec := httptest.NewRecorder()
	sim.Handler().ServeHTTP(rec, req)
	return rec
}

// checkTokenAnswer holds for every answer of the token endpoint: a known
// status, a JSON body, and no secret in an error.
func checkTokenAnswer(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	switch rec.Code {
	case http.StatusOK, http.StatusBadRequest, http.StatusUnauthorized:
	default:
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if !json.Valid(rec.Body.Bytes()) {
		t.Fatalf("body is not JSON: %q", rec.Body)
	}
	if rec.Code != http.StatusOK && strings.Contains(rec.Body.String(), shipSecret) {
		t.Fatalf("error body carries the secret: %s", rec.Body)
	}
}

func FuzzTokenForm(f *testing.F) {
	valid := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {shipClient},
		"client_secret": {shipSecret},
		"scope":         {fuzzHost + "/.default"},
	}
	f.Add(valid.Encode(), "", "")
	noSecret := url.Values{"grant_type": {"client_credentials"}, "scope": {fuzzHost + "/.default"}}
	f.Add(noSecret.Encode(), url.QueryEscape(shipClient), url.QueryEscape(shipSecret))
	f.Add(noSecret.Encode(), shipClient, shipSecret+"%")
	f.Add(valid.Encode()+"&client_secret=again", "", "")
	f.Add("grant_type=client_credentials&client_id=%zz", "", "")
	f.Add("client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=a.b.c&client_id="+shipClient+"&grant_type=client_credentials", "", "")
	f.Add("", "", "")
	f.Add(strings.Repeat("a=b&", 1000), "\x00", "\xff")

	f.Fuzz(func(t *testing.T, body, user, pass string) {
		sim := techpasssim.New(techpasssim.Config{Seed: 1})
		if err := sim.AddNamespace(shipNamespace()); err != nil {
			t.Fatal(err)
		}
		rec := postToken(sim, body, user, pass)
		checkTokenAnswer(t, rec)
		if rec.Code == http.StatusOK {
			form, _ := url.ParseQuery(body)
			u, _ := url.QueryUnescape(pass)
			if form.Get("client_secret") != shipSecret && pass != shipSecret && u != shipSecret {
				t.Fatalf("a token was issued without the secret: body %q, basic %q:%q", body, user, pass)
			}
		}
	})
}

func FuzzClientAssertion(f *testing.F) {
	cert, key := newCert(f)
	otherCert, otherKey := newCert(f)
	clk := newClock()
	now := clk.Now()
	claims := func() jwt.MapClaims {
		return jwt.MapClaims{
			"aud": fuzzHost + "/" + testDir + "/oauth2/v2.0/token",
			"iss": certClient, "sub": certClient, "jti": "fuzz-jti",
			"nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		}
	}
	valid := sign(f, jwt.SigningMethodRS256, key, cert, claims(), nil)
	f.Add(valid)
	f.Add(sign(f, jwt.SigningMethodPS256, key, cert, claims(), nil))
	f.Add(sign(f, jwt.SigningMethodRS256, otherKey, cert, claims(), nil))
	f.Add(sign(f, jwt.SigningMethodRS256, otherKey, otherCert, claims(), nil))
	f.Add(sign(f, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, cert, claims(), nil))
	f.Add(sign(f, jwt.SigningMethodHS256, cert.RawSubjectPublicKeyInfo, cert, claims(), nil))
	f.Add("a.b.c")
	f.Add("..")
	f.Add("")

	f.Fuzz(func(t *testing.T, assertion string) {
		sim := techpasssim.New(techpasssim.Config{Seed: 1, Now: clk.Now})
		if err := sim.AddNamespace(certNamespace(cert)); err != nil {
			t.Fatal(err)
		}
		form := url.Values{
			"grant_type":            {"client_credentials"},
			"client_id":             {certClient},
			"client_assertion_type": {techpasssim.AssertionTypeJWTBearer},
			"client_assertion":      {assertion},
			"scope":                 {fuzzHost + "/.default"},
		}
		rec := postToken(sim, form.Encode(), "", "")
		checkTokenAnswer(t, rec)
		if rec.Code != http.StatusOK && len(assertion) >= 20 && strings.Contains(rec.Body.String(), assertion) {
			t.Fatalf("error body echoes the assertion: %s", rec.Body)
		}
		if rec.Code == http.StatusOK {
			// Only the seeded, correctly signed claims can pass: nothing
			// else is signed by the certificate's key.
			var got jwt.MapClaims
			if _, _, err := jwt.NewParser().ParseUnverified(assertion, &got); err != nil || got["jti"] != "fuzz-jti" {
				t.Fatalf("accepted an assertion the key never signed: %q", assertion)
			}
		}
	})
}
