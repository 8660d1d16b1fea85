package techpasssim_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/groupgate/groupgate/techpass"
	"github.com/groupgate/groupgate/techpass/techpasssim"
)

// Example serves a simulator with one namespace, gets an access token with
// the client secret and lists the namespace's groups, then reads the
// statistics a test would assert on.
func Example() {
	const dir = "7e1d3a52-0b4c-4f1e-9d7a-5c2b8e6f1a90"
	sim := techpasssim.New(techpasssim.Config{})
	err := sim.AddNamespace(techpasssim.Namespace{
		Name:         "SHIP",
		DirectoryID:  dir,
		ClientID:     "1f0c2d3e-4a5b-4c6d-8e7f-901a2b3c4d5e",
		ClientSecret: "from-your-secret-manager",
		APIKeys:      []string{"namespace-api-key"},
	})
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(sim.Handler())
	defer srv.Close()

	resp, err := http.PostForm(techpasssim.TokenURL(srv.URL, dir), url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {"1f0c2d3e-4a5b-4c6d-8e7f-901a2b3c4d5e"},
		"client_secret": {"from-your-secret-manager"},
		"scope":         {techpasssim.Scope(srv.URL)},
	})
	if err != nil {
		panic(err)
	}
	var tok techpass.TokenResponse
	err = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if err != nil {
		panic(err)
	}
	fmt.Println(tok.TokenType, tok.ExpiresIn)

	req, err := http.NewRequest(http.MethodGet, srv.URL+"/iam/namespace/SHIP/groups", nil)
	if err != nil {
		panic(err)
	}
	req.Header.Set("x-api-key", "namespace-api-key")
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, strings.TrimSpace(string(body)))

	st := sim.Stats().Namespaces["SHIP"]
	fmt.Println("requests", st.Requests, "violations", st.Violations, "tokens", st.TokenRequests)
	// Output:
	// Bearer 1199
	// 200 {"groups":[]}
	// requests 1 violations 0 tokens 1
}
