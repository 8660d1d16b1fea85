package groupgate

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestPublishedSpecDropsOnlyCodegenExtensions: the published document is
// the written one with every x-go-* and x-oapi-codegen-* key removed, and
// nothing else changed.
func TestPublishedSpecDropsOnlyCodegenExtensions(t *testing.T) {
	var written, published any
	if err := yaml.Unmarshal(OpenAPISpec(), &written); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(PublishedSpec(), &published); err != nil {
		t.Fatalf("the published document is not YAML: %v", err)
	}
	removed := dropCodegen(written)
	if removed == 0 {
		t.Fatal("openapi.yaml has no codegen extension: the test proves nothing (or they were renamed)")
	}
	if !reflect.DeepEqual(written, published) {
		t.Error("the published document differs from openapi.yaml beyond its codegen extensions")
	}
	if n := dropCodegen(published); n != 0 {
		t.Errorf("the published document keeps %d codegen extensions", n)
	}
}

// dropCodegen removes codegen extension keys from v in place and counts them.
func dropCodegen(v any) int {
	n := 0
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if strings.HasPrefix(k, "x-go-") || strings.HasPrefix(k, "x-oapi-codegen-") {
				delete(x, k)
				n++
				continue
			}
			n += dropCodegen(e)
		}
	case []any:
		for _, e := range x {
			n += dropCodegen(e)
		}
	}
	return n
}

// TestOpenAPILint runs an OpenAPI linter written by others, Redocly CLI
// (the exact version in tools/openapi-lint/package-lock.json, installed by
// scripts/install-test-deps.sh), over openapi.yaml with its recommended
// rules (tools/openapi-lint/redocly.yaml): no error and no warning may
// remain. Without the linter the test is skipped, except in CI (CI=true),
// where it fails.
func TestOpenAPILint(t *testing.T) {
	bin := filepath.Join("tools", "openapi-lint", "node_modules", ".bin", "redocly")
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the OpenAPI linter is not installed (%v): run scripts/install-test-deps.sh", err)
		}
		t.Skipf("the OpenAPI linter is not installed: run scripts/install-test-deps.sh (%v)", err)
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("the OpenAPI linter is installed but node is not on PATH: %v", err)
	}
	cmd := exec.Command(bin, "lint", "--config", filepath.Join("tools", "openapi-lint", "redocly.yaml"), "--format=json", "openapi.yaml")
	cmd.Env = append(os.Environ(), "REDOCLY_TELEMETRY=off", "REDOCLY_SUPPRESS_UPDATE_NOTICE=true", "NO_COLOR=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var report struct {
		Totals struct {
			Errors   *int `json:"errors"`
			Warnings *int `json:"warnings"`
		} `json:"totals"`
		Problems []struct {
			RuleID   string `json:"ruleId"`
			Severity string `json:"severity"`
			Message  string `json:"message"`
			Location []struct {
				Pointer string `json:"pointer"`
			} `json:"location"`
		} `json:"problems"`
	}
	if jerr := json.Unmarshal(out, &report); jerr != nil || report.Totals.Errors == nil || report.Totals.Warnings == nil {
		t.Fatalf("redocly lint: %v; no report (%v):\n%s\n%s", err, jerr, out, stderr.Bytes())
	}
	for _, p := range report.Problems {
		where := ""
		if len(p.Location) > 0 {
			where = p.Location[0].Pointer
		}
		t.Errorf("%s %s at %s: %s", p.Severity, p.RuleID, where, p.Message)
	}
	if *report.Totals.Errors+*report.Totals.Warnings > 0 || err != nil {
		t.Fatalf("redocly lint: %d errors, %d warnings (%v)", *report.Totals.Errors, *report.Totals.Warnings, err)
	}
}
