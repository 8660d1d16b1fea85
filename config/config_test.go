package config_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/groupgate/groupgate/config"
	"github.com/groupgate/groupgate/internal/testkit"
)

// TestConfigValidateReportsEverything: one run lists every problem.
func TestConfigValidateReportsEverything(t *testing.T) {
	c := config.DefaultConfig()
	c.Listen = "nope"
	c.LogLevel = "loud"
	c.Interval = 0
	c.Tenants = []config.TenantConfig{{
		Name: "s",
		TechPass: config.TechPassConfig{APIURL: "ftp://x", ClientSecretFile: "/a", ClientSecretEnv: "B",
			APIKeyEnv: "bad name"},
		Projects: []config.ProjectConfig{{Name: "M_H", Keys: []config.KeyConfig{{ID: "k", Hash: "md5:00"}}}},
	}}
	err := c.Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, want := range []string{"listen", "log_level", "interval", "tenants[0] (S): name", "api_url", "directory_id", "client_id",
		"exactly one of client_secret_file", `"bad name" is not an environment variable name`, "projects[0] (M_H): name", "hash must be sha256"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	var zero config.Config
	if err := zero.Validate(); err == nil {
		t.Error("the zero config must be invalid")
	}
}

func TestConfigFileRejectsUnknownKeys(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	testkit.WriteFile(t, file, "listen: 127.0.0.1:1\nclient_secret: oops\n")
	c := config.DefaultConfig()
	if err := c.LoadFile(file); err == nil || !strings.Contains(err.Error(), "client_secret") {
		t.Fatalf("unknown key accepted: %v", err)
	}
}

// TestRouteOverrideValidation: every problem of the route overrides is
// reported at start, at once.
func TestRouteOverrideValidation(t *testing.T) {
	cfg := config.DefaultConfig()
	cfg.AllowHTTP = true
	cfg.Tenants = []config.TenantConfig{{Name: "SHIP", TechPass: config.TechPassConfig{
		APIURL: "https://api.techpass.gov.sg", DirectoryID: "d", ClientID: "c", ClientSecretFile: "/s", APIKeyFile: "/k",
		MembersSource: "graph", MemberPageSize: -1,
		Routes: map[string]config.RouteConfig{
			"getGroups":   {Method: "GET"},
			"getGroup":    {Method: "FETCH", Path: "/iam/namespace/{namespace}/groups/{group}", Params: map[string]string{"offset": "o"}},
			"addMember":   {Path: "iam/members"},
			"deleteGroup": {Path: "/iam/namespace/{namespace}/groups", Method: "POST"},
			"listGroups":  {Params: map[string]string{"includeOnTechBiz": "bad name"}},
		},
	}}}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("invalid overrides accepted")
	}
	for _, want := range []string{
		`members_source: "graph"`, "member_page_size",
		`unknown route "getGroups"`, `method "FETCH"`, "unknown placeholder {group}", `lacks the placeholder {groupId}`,
		`unknown parameter "offset"`, `path "iam/members" must be absolute`, "routes createGroup and deleteGroup are both POST",
		`"bad name" is not a query parameter name`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	// On the built-in simulator, routes cannot be corrected.
	cfg.Tenants[0].TechPass = config.TechPassConfig{Routes: map[string]config.RouteConfig{"getGroup": {Method: "GET"}}}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "routes apply to a tenant with techpass.api_url") {
		t.Errorf("routes on a simulator tenant: %v", err)
	}
}

// TestRouteOverrideFromYAML: the README's example reads as intended, and an
// unknown key inside a route is refused.
func TestRouteOverrideFromYAML(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "groupgate.yaml")
	testkit.WriteFile(t, path, `allow_http: true
tenants:
  - name: SHIP
    techpass:
      api_url: https://api.techpass.gov.sg
      directory_id: d
      client_id: c
      client_secret_file: /run/secrets/s
      api_key_file: /run/secrets/k
      members_source: getGroup
      member_page_size: 100
      routes:
        getGroup:
          method: GET
          path: /iam/namespace/{namespace}/groups/{identifier}
          params: {page: pageNumber, pageSize: size}`)
	cfg := config.DefaultConfig()
	if err := cfg.LoadFile(path); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	tp := cfg.Tenants[0].TechPass
	if rc := tp.Routes["getGroup"]; rc.Path != "/iam/namespace/{namespace}/groups/{identifier}" || rc.Params["pageSize"] != "size" || tp.MemberPageSize != 100 {
		t.Errorf("read %+v", tp)
	}
	testkit.WriteFile(t, path, "tenants:\n  - name: SHIP\n    techpass:\n      routes:\n        getGroup: {verb: GET}\n")
	bad := config.DefaultConfig()
	if err := bad.LoadFile(path); err == nil || !strings.Contains(err.Error(), "verb") {
		t.Errorf("unknown key in a route: %v", err)
	}
}
