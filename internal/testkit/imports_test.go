package testkit_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestOnlyTestsImportTestkit: apart from tests, only the `…test`
// conformance packages import testkit, so no production build carries it.
func TestOnlyTestsImportTestkit(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go is not on PATH")
	}
	const kit = "github.com/groupgate/groupgate/internal/testkit"
	cmd := exec.CommandContext(t.Context(), goBin, "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "github.com/groupgate/groupgate/...")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	importers := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !slices.Contains(f[1:], kit) {
			continue
		}
		importers++
		if !strings.HasSuffix(f[0], "test") {
			t.Errorf("%s, not a test package, imports testkit", f[0])
		}
	}
	if importers == 0 {
		t.Error("go list shows no package importing testkit; the check proves nothing")
	}
}
