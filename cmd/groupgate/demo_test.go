package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate/internal/testkit"
)

// startDemo starts srv, a groupgate -demo command not yet started, in a
// process group of its own, collecting its output, and waits up to within
// for its banner. When the test ends it stops the server with SIGINT and
// expects a clean exit (status 0) within 30 s; past that it kills the
// group. It returns the banner and the server's log.
func startDemo(t *testing.T, srv *exec.Cmd, within time.Duration) (banner, *testkit.Buffer) {
	t.Helper()
	ownGroup(srv)
	srv.WaitDelay = 5 * time.Second
	stdout, logs := &testkit.Buffer{}, &testkit.Buffer{}
	srv.Stdout, srv.Stderr = stdout, logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- srv.Wait() }()
	t.Cleanup(func() {
		// SIGINT is a clean shutdown: exit 0.
		_ = srv.Process.Signal(os.Interrupt)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("server after SIGINT: %v\n%s", err, tail(logs.String(), 40))
			}
		case <-time.After(30 * time.Second):
			_ = killGroup(srv)
			<-exited
			t.Errorf("server still running 30 s after SIGINT\n%s", tail(logs.String(), 40))
		}
	})
	return waitForBanner(t, within, stdout, logs), logs
}

// banner is what make run prints that the reader needs.
type banner struct{ base, key, operator string }

// parseBanner reads the address and the keys from what the demo printed so
// far; ok once all three are there.
func parseBanner(text string) (b banner, ok bool) {
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		if rest, ok := strings.CutPrefix(l, "groupgate is listening on "); ok {
			b.base = strings.TrimSpace(rest)
		}
		if i+1 < len(lines) && strings.HasPrefix(l, "Demo tenant SHIP") {
			b.key = strings.TrimSpace(lines[i+1])
		}
		if i+1 < len(lines) && strings.HasPrefix(l, "Operator key") {
			b.operator = strings.TrimSpace(lines[i+1])
		}
	}
	return b, b.base != "" && strings.HasPrefix(b.key, "gk_") && strings.HasPrefix(b.operator, "gk_")
}

// waitForBanner waits up to within for the address and the keys the demo
// prints on stdout.
func waitForBanner(t *testing.T, within time.Duration, stdout, logs *testkit.Buffer) banner {
	t.Helper()
	var b banner
	if !testkit.Poll(within, 20*time.Millisecond, func() (ok bool) { b, ok = parseBanner(stdout.String()); return ok }) {
		t.Fatalf("the demo did not print its address and keys within %v:\n%s\nlog:\n%s", within, stdout.String(), tail(logs.String(), 40))
	}
	return b
}

// tail returns the last n lines of s, for a failure message.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
