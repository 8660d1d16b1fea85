package storecopy_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate/boltstore"
	"github.com/groupgate/groupgate/boltstore/bolttest"
	"github.com/groupgate/groupgate/internal/pgtest"
	"github.com/groupgate/groupgate/internal/testkit"
	"github.com/groupgate/groupgate/pgstore"
)

// run runs the built binary with args and env, and returns its exit code
// and output.
func run(t *testing.T, bin string, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return code, out.String(), errOut.String()
}

// TestCopyStoreCommand runs groupgate copy-store as built: a bbolt file to
// PostgreSQL (a role that needs its password, given by a file) and back to
// a new file (the password by a variable); a second copy into the same
// database is refused; a file held by a running service is refused.
func TestCopyStoreCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dsn, password := pgtest.PasswordDSN(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "groupgate")
	build := exec.Command("go", "build", "-o", bin, "../cmd/groupgate")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	src := filepath.Join(dir, "src.db")
	orig := bolttest.MustOpenAt(t, src)
	fill(t, orig, testkit.NewClock(time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)))
	want := export(t, orig)
	// The running "service" holds the file: the copy says so.
	code, _, stderr := run(t, bin, nil, "copy-store", "--from", src, "--to", filepath.Join(dir, "x.db"))
	if code != 1 || !strings.Contains(stderr, "is the service running on it?") {
		t.Errorf("copy of a file in use: exit %d, %q", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "x.db")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused copy left its target: %v", err)
	}
	if err := orig.Close(); err != nil {
		t.Fatal(err)
	}

	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := run(t, bin, nil, "copy-store", "--from", src, "--to", dsn, "--password-file", pwFile)
	if code != 0 {
		t.Fatalf("copy to PostgreSQL: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, line := range []string{"tenants 2", "operations 4", "queued 3", "audit entries 7", "idempotency keys 4"} {
		if !strings.Contains(strings.Join(strings.Fields(stdout), " "), line) {
			t.Errorf("the report lacks %q:\n%s", line, stdout)
		}
	}
	if strings.Contains(stdout+stderr, password) {
		t.Error("the password was printed")
	}

	// Into the same database again: refused, nothing written.
	code, _, stderr = run(t, bin, nil, "copy-store", "--from", src, "--to", dsn, "--password-file", pwFile)
	if code != 1 || !strings.Contains(stderr, "not empty") || !strings.Contains(stderr, "nothing was written") {
		t.Errorf("copy into a non-empty database: exit %d, %q", code, stderr)
	}

	// Without its password the database is not reached; a password in
	// the DSN is refused and not repeated.
	if code, _, _ := run(t, bin, nil, "copy-store", "--from", dsn, "--to", filepath.Join(dir, "y.db")); code != 1 {
		t.Errorf("without a password: exit %d", code)
	}
	withPassword := strings.Replace(dsn, "@", ":"+password+"@", 1)
	code, stdout, stderr = run(t, bin, nil, "copy-store", "--from", withPassword, "--to", filepath.Join(dir, "y.db"))
	if code == 0 || strings.Contains(stdout+stderr, password) || !strings.Contains(stderr, "must not contain a password") {
		t.Errorf("a password in the DSN: exit %d, %q", code, stderr)
	}

	// A replica of the service running on the database: refused.
	pg, err := pgstore.Open(context.Background(), pgstore.Config{DSN: dsn, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	if err := pg.Heartbeat(context.Background(), "replica-1", time.Minute); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = run(t, bin, []string{"PGPW=" + password}, "copy-store", "--from", dsn, "--to", filepath.Join(dir, "z.db"), "--password-env", "PGPW")
	if code != 1 || !strings.Contains(stderr, "the service is running on this database (replicas replica-1)") {
		t.Errorf("copy from a database in use: exit %d, %q", code, stderr)
	}
	if err := pg.Depart(context.Background(), "replica-1"); err != nil {
		t.Fatal(err)
	}

	back := filepath.Join(dir, "back.db")
	code, stdout, stderr = run(t, bin, []string{"PGPW=" + password}, "copy-store", "--from", dsn, "--to", back, "--password-env", "PGPW")
	if code != 0 {
		t.Fatalf("copy to bbolt: exit %d\n%s%s", code, stdout, stderr)
	}
	st, err := boltstore.Open(back, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sameDump(t, "bbolt -> PostgreSQL -> bbolt by the command", want, export(t, st))

	sameDump(t, "PostgreSQL after the refused copies", want, export(t, pg))

	// Usage errors exit 2.
	if code, _, _ := run(t, bin, nil, "copy-store", "--from", src); code != 2 {
		t.Errorf("without --to: exit %d", code)
	}
}
