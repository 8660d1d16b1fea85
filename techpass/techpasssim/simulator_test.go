package techpasssim_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate/internal/testkit"
	"github.com/groupgate/groupgate/techpass"
	"github.com/groupgate/groupgate/techpass/techpasssim"
)

// TestRouteTable checks that the simulator serves every route of
// techpass.Routes and nothing else: any other method and path is a JSON 404.
func TestRouteTable(t *testing.T) {
	e := newEnv(t, techpasssim.Config{})
	tok := e.token(shipClient, shipSecret)
	fill := func(pattern string) string {
		return techpass.Route{Pattern: pattern}.Path("namespace", ns, "groupId", "35176114-74d0-4d7e-af7c-13e5775d4016",
			"userId", "00000000-0000-4000-8000-000000000001", "identifier", "someone@example.gov.sg")
	}

	served := map[string]bool{}
	for _, rt := range techpass.Routes() {
		path := fill(rt.Pattern)
		served[rt.Method+" "+path] = true
		t.Run(string(rt.Name), func(t *testing.T) {
			// No API key: the route exists, so the gateway answers 403.
			wantStatus(t, e.paced(rt.Method, path, "", "", nil), http.StatusForbidden, "Forbidden")
			// With credentials the route's handler answers: not 404
			// "Not Found", not 501.
			r := e.paced(rt.Method, path, shipKey, tok, techpass.CreateGroupRequest{Name: "route-table"})
			if r.status == http.StatusNotImplemented || r.message() == "Not Found" || r.status >= 500 {
				t.Errorf("%s %s: %d %s", rt.Method, path, r.status, r.body)
			}
		})
	}

	paths := []string{
		"/", "/iam", "/iam/users", "/iam/users/", "/iam/users/someone/groups", "/iam/existing-users",
		"/iam/namespace/SHIP", "/iam/namespace/SHIP/users", "/iam/namespace/SHIP/users/vendor",
		"/iam/namespace/SHIP/groups/x/members/", "/iam/namespace/SHIP/groups/x/members/y/z",
		"/iam/namespace/SHIP/groups/", "/" + testDir + "/oauth2/v2.0/authorize", "/" + testDir + "/oauth2/token",
		"/" + testDir + "/oauth2/v2.0/token",
	}
	for _, rt := range techpass.Routes() {
		paths = append(paths, fill(rt.Pattern))
	}
	methods := []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}
	for _, p := range paths {
		for _, m := range methods {
			if served[m+" "+p] || (m == http.MethodPost && strings.HasSuffix(p, "/oauth2/v2.0/token")) {
				continue
			}
			r := e.paced(m, p, shipKey, tok, nil)
			if r.status != http.StatusNotFound || r.message() != "Not Found" {
				t.Errorf("%s %s: %d %s, want 404 Not Found", m, p, r.status, r.body)
			}
		}
	}
	if e.sim.Stats().Totals.UnknownRoutes == 0 {
		t.Error("unknown routes not counted")
	}
}

func TestAddNamespace(t *testing.T) {
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecCert := testkit.NewCert(t, testkit.CertOptions{Key: ecKey, NotAfter: time.Now().Add(time.Hour)}).Cert

	invalid := map[string]func(n *techpasssim.Namespace){
		"empty name":          func(n *techpasssim.Namespace) { n.Name = "" },
		"slash in name":       func(n *techpasssim.Namespace) { n.Name = "A/B" },
		"no directory":        func(n *techpasssim.Namespace) { n.DirectoryID = "" },
		"no client":           func(n *techpasssim.Namespace) { n.ClientID = " " },
		"no credential":       func(n *techpasssim.Namespace) { n.ClientSecret = "" },
		"ECDSA certificate":   func(n *techpasssim.Namespace) { n.Certificate = ecCert },
		"no API key":          func(n *techpasssim.Namespace) { n.APIKeys = nil },
		"five API keys":       func(n *techpasssim.Namespace) { n.APIKeys = []string{"1", "2", "3", "4", "5"} },
		"empty API key":       func(n *techpasssim.Namespace) { n.APIKeys = []string{"k", ""} },
		"repeated API key":    func(n *techpasssim.Namespace) { n.APIKeys = []string{"k", "k"} },
		"negative interval":   func(n *techpasssim.Namespace) { n.Interval = -time.Second },
		"negative limit":      func(n *techpasssim.Namespace) { n.GroupLimit = -1 },
		"several problems at": func(n *techpasssim.Namespace) { n.ClientID, n.APIKeys = "", nil },
	}
	for name, change := range invalid {
		t.Run(name, func(t *testing.T) {
			n := shipNamespace()
			change(&n)
			err := techpasssim.New(techpasssim.Config{}).AddNamespace(n)
			if !errors.Is(err, techpasssim.ErrInvalidNamespace) {
				t.Errorf("AddNamespace = %v, want ErrInvalidNamespace", err)
			}
			if err != nil && strings.Contains(err.Error(), shipSecret) {
				t.Errorf("error carries the secret: %v", err)
			}
		})
	}
	t.Run("several problems reported at once", func(t *testing.T) {
		n := shipNamespace()
		n.ClientID, n.APIKeys = "", nil
		err := techpasssim.New(techpasssim.Config{}).AddNamespace(n)
		if err == nil || !strings.Contains(err.Error(), "client id") || !strings.Contains(err.Error(), "API keys") {
			t.Errorf("AddNamespace = %v, want both problems", err)
		}
	})

	duplicates := map[string]func(n *techpasssim.Namespace){
		"same name":                  func(n *techpasssim.Namespace) {},
		"same name in another case":  func(n *techpasssim.Namespace) { n.Name = "ship" },
		"same client in a directory": func(n *techpasssim.Namespace) { n.Name, n.APIKeys = "OTHER", []string{"other-key"} },
		"same client, other case": func(n *techpasssim.Namespace) {
			n.Name, n.APIKeys, n.ClientID, n.DirectoryID = "OTHER", []string{"other-key"}, strings.ToUpper(shipClient), strings.ToUpper(testDir)
		},
		"same API key": func(n *techpasssim.Namespace) { n.Name, n.ClientID = "OTHER", "other-client" },
	}
	for name, change := range duplicates {
		t.Run(name, func(t *testing.T) {
			sim := techpasssim.New(techpasssim.Config{})
			if err := sim.AddNamespace(shipNamespace()); err != nil {
				t.Fatal(err)
			}
			n := shipNamespace()
			change(&n)
			if err := sim.AddNamespace(n); !errors.Is(err, techpasssim.ErrNamespaceExists) {
				t.Errorf("AddNamespace = %v, want ErrNamespaceExists", err)
			}
		})
	}

	t.Run("same client id in another directory", func(t *testing.T) {
		sim := techpasssim.New(techpasssim.Config{})
		n := shipNamespace()
		if err := sim.AddNamespace(n); err != nil {
			t.Fatal(err)
		}
		n.Name, n.DirectoryID, n.APIKeys = "OTHER", "another-directory", []string{"other-key"}
		if err := sim.AddNamespace(n); err != nil {
			t.Errorf("AddNamespace = %v, want success", err)
		}
	})

	t.Run("SetAPIKeys", func(t *testing.T) {
		sim := techpasssim.New(techpasssim.Config{})
		for _, n := range []techpasssim.Namespace{shipNamespace(), dockNamespace()} {
			if err := sim.AddNamespace(n); err != nil {
				t.Fatal(err)
			}
		}
		if err := sim.SetAPIKeys(ns, dockKey); !errors.Is(err, techpasssim.ErrNamespaceExists) {
			t.Errorf("key of another namespace: %v, want ErrNamespaceExists", err)
		}
		if err := sim.SetAPIKeys(ns); !errors.Is(err, techpasssim.ErrInvalidNamespace) {
			t.Errorf("no key: %v, want ErrInvalidNamespace", err)
		}
		if err := sim.SetAPIKeys("NOPE", "k"); !errors.Is(err, techpasssim.ErrUnknownNamespace) {
			t.Errorf("unknown namespace: %v, want ErrUnknownNamespace", err)
		}
	})

	t.Run("the caller's key slice is copied", func(t *testing.T) {
		e := newEnv(t, techpasssim.Config{}, dockNamespace())
		n := shipNamespace()
		if err := e.sim.AddNamespace(n); err != nil {
			t.Fatal(err)
		}
		n.APIKeys[0] = "changed"
		tok := e.token(shipClient, shipSecret)
		wantStatus(t, e.paced(http.MethodGet, groupsPath(t, ns), shipKey, tok, nil), http.StatusOK, "")
	})
}

func TestConfigValidate(t *testing.T) {
	if err := (techpasssim.Config{}).Validate(); err != nil {
		t.Errorf("zero Config: %v", err)
	}
	for name, c := range map[string]techpasssim.Config{
		"negative interval":        {Interval: -1},
		"sub-second token life":    {TokenLifetime: 500 * time.Millisecond},
		"negative group limit":     {GroupLimit: -1},
		"relative API URL":         {APIURL: "api.techpass.gov.sg"},
		"invalid faults":           {Faults: techpasssim.Faults{ThrottleRate: 2}},
		"non-HTTP API URL":         {APIURL: "ftp://api.techpass.gov.sg"},
		"several problems at once": {Interval: -1, GroupLimit: -1},
	} {
		t.Run(name, func(t *testing.T) {
			err := c.Validate()
			if !errors.Is(err, techpasssim.ErrInvalidConfig) {
				t.Fatalf("Validate = %v, want ErrInvalidConfig", err)
			}
			defer func() {
				if recover() == nil {
					t.Error("New accepted an invalid config")
				}
			}()
			techpasssim.New(c)
		})
	}
	t.Run("token lifetime", func(t *testing.T) {
		e := newEnv(t, techpasssim.Config{TokenLifetime: 90 * time.Second})
		r := e.postForm(e.tokenURL(testDir), e.secretForm(shipClient, shipSecret))
		if tr := decode[techpass.TokenResponse](t, r); tr.ExpiresIn != 90 || tr.ExtExpiresIn != 90 {
			t.Errorf("expires_in = %d/%d, want 90", tr.ExpiresIn, tr.ExtExpiresIn)
		}
	})
}

// TestCredentialsNeverLogged runs traffic through a simulator that logs
// into a buffer, and checks no credential reached the log.
func TestCredentialsNeverLogged(t *testing.T) {
	var buf testkit.Buffer
	e := newEnv(t, techpasssim.Config{Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	tok := e.token(shipClient, shipSecret)
	e.postForm(e.tokenURL(testDir), e.secretForm(shipClient, shipSecret+"-wrong"))
	wantStatus(t, e.paced(http.MethodPost, groupsPath(t, ns), shipKey, tok, techpass.CreateGroupRequest{Name: "g"}), http.StatusCreated, "")
	e.api(http.MethodGet, groupsPath(t, ns), shipKey, tok, nil)
	log := buf.String()
	if !strings.Contains(log, "status=201") {
		t.Fatalf("log lacks the requests: %s", log)
	}
	for _, secret := range append(e.sim.IssuedTokens(), shipSecret, shipKey) {
		if strings.Contains(log, secret) {
			t.Errorf("log carries a credential: %s", log)
		}
	}
}
