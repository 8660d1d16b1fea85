package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

var issuedKey = regexp.MustCompile(`gk_[a-z0-9]{8,}_`)

// TestBinary builds groupgate and runs it as `make run` does (-demo), then
// drives it with the same binary's command line: the server's flags and the
// client's commands share one program, and exit codes reach the shell.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := builtBinary(t)

	// Only what the test sets: a developer's GROUPGATE_* must not change
	// what the processes do.
	base := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	srv := exec.Command(bin, "-demo", "-log-format", "text", "-listen", "127.0.0.1:0", "-store", filepath.Join(dir, "data", "groupgate.db"))
	srv.Env = base
	// The banner: the address, then the demo project key and the operator
	// key.
	b, _ := startDemo(t, srv, 60*time.Second)
	url, key, opKey := b.base, b.key, b.operator

	run := func(env []string, args ...string) (int, string, string) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(slices.Clone(base), env...)
		var out, errOut strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out.String()+errOut.String(), key) || strings.Contains(out.String()+errOut.String(), opKey) {
			t.Errorf("%q printed a key", args)
		}
		return code, out.String(), errOut.String()
	}
	project := []string{"GROUPGATE_URL=" + url, "GROUPGATE_KEY=" + key, "GROUPGATE_TENANT=SHIP", "GROUPGATE_PROJECT=MOH"}

	for _, h := range []string{"--help", "help"} {
		code, out, _ := run(nil, h)
		if code != 0 || !strings.Contains(out, "-demo") || !strings.Contains(out, "groups ") || !strings.Contains(out, "Exit status:") {
			t.Errorf("groupgate %s: both halves; exit %d\n%s", h, code, out)
		}
	}
	if code, out, errOut := run(nil, "newkey", "extra"); code != 2 || out != "" || !strings.Contains(errOut, "Usage: groupgate newkey") {
		t.Errorf("newkey with an argument: exit %d, usage on stderr only\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if code, _, errOut := run(nil, "grups", "list"); code != 2 || !strings.Contains(errOut, `unknown command "grups"; 'groupgate help' lists the commands`) {
		t.Errorf("a mistyped command: exit %d, %s", code, errOut)
	}
	// backup reads its key as the client does: a file others may read is
	// refused before anything is sent.
	opFile := filepath.Join(dir, "operator.key")
	if err := os.WriteFile(opFile, []byte(opKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(opFile, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := run(nil, "backup", "-url", url, "-out", filepath.Join(dir, "b1.db"), "-key-file", opFile); code != 2 || !strings.Contains(errOut, "may be read by others") {
		t.Errorf("backup with a readable key file: exit %d, %s", code, errOut)
	}
	if err := os.Chmod(opFile, 0o600); err != nil {
		t.Fatal(err)
	}
	for i, env := range [][]string{{"GROUPGATE_KEY_FILE=" + opFile}, {"GROUPGATE_OPERATOR_KEY=" + opKey}} {
		out := filepath.Join(dir, fmt.Sprintf("b%d.db", i+2))
		if code, stdout, errOut := run(env, "backup", "-url", url, "-out", out); code != 0 || !strings.Contains(stdout, "verified") {
			t.Errorf("backup with %s: exit %d\n%s%s", strings.Split(env[0], "=")[0], code, stdout, errOut)
		}
	}
	if code, _, _ := run(nil, "-no-such-flag"); code != 2 {
		t.Errorf("a wrong server flag: exit %d, want 2", code)
	}
	for _, args := range [][]string{{"-demo", "-help"}, {"newkey", "--help"}, {"backup", "--help"}, {"help"}, {"audit", "-h"}} {
		// The server's flag set prints its usage on stderr.
		if code, out, errOut := run(nil, args...); code != 0 || !strings.Contains(out+errOut, "Usage") || issuedKey.MatchString(out) {
			t.Errorf("%q: exit %d\n%s", args, code, out)
		}
	}
	code, out, errOut := run(project, "groups", "create", "billing", "--description", "Billing team", "--wait", "--timeout", "1m")
	if code != 0 || !regexp.MustCompile(`(?m)^STATE\s+succeeded$`).MatchString(out) {
		t.Fatalf("groups create --wait: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, _ = run(project, "groups", "list")
	if code != 0 || !regexp.MustCompile(`(?m)^billing\s+active\s+0\s+Billing team`).MatchString(out) {
		t.Errorf("groups list: exit %d\n%s", code, out)
	}
	if code, _, _ := run(project, "groups", "get", "nothing"); code != 3 {
		t.Errorf("a missing group: exit %d, want 3", code)
	}
	if code, _, errOut := run(project, "groups", "list", "--key", key); code != 2 || !strings.Contains(errOut, "never taken as a flag value") {
		t.Errorf("--key: exit %d, %s", code, errOut)
	}
}
