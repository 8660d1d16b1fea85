package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
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
	bin := filepath.Join(dir, "groupgate")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	ctx, cancel := context.WithCancel(t.Context())
	srv := exec.CommandContext(ctx, bin, "-demo", "-log-format", "text", "-listen", "127.0.0.1:0", "-store", filepath.Join(dir, "data", "groupgate.db"))
	srv.Cancel = func() error { return srv.Process.Signal(os.Interrupt) }
	srv.Stderr = io.Discard
	stdout, err := srv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := srv.Wait(); err != nil && !errors.Is(ctx.Err(), context.Canceled) {
			t.Errorf("server: %v", err)
		}
	})
	// The banner: the address, then the demo project key.
	var url, key string
	lines := bufio.NewScanner(stdout)
	for lines.Scan() && key == "" {
		line := lines.Text()
		if u, ok := strings.CutPrefix(line, "groupgate is listening on "); ok {
			url = u
		}
		if strings.HasPrefix(line, "Demo tenant SHIP") && lines.Scan() {
			key = strings.TrimSpace(lines.Text())
		}
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	if url == "" || !strings.HasPrefix(key, "gk_") {
		t.Fatalf("banner: url %q, key found %v", url, key != "")
	}

	run := func(env []string, args ...string) (int, string, string) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), env...)
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
		if strings.Contains(out.String()+errOut.String(), key) {
			t.Errorf("%q printed the key", args)
		}
		return code, out.String(), errOut.String()
	}
	project := []string{"GROUPGATE_URL=" + url, "GROUPGATE_KEY=" + key, "GROUPGATE_TENANT=SHIP", "GROUPGATE_PROJECT=MOH"}

	code, out, _ := run(nil, "--help")
	if code != 0 || !strings.Contains(out, "-demo") || !strings.Contains(out, "groups ") || !strings.Contains(out, "Exit status:") {
		t.Errorf("groupgate --help: exit %d\n%s", code, out)
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
