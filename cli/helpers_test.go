package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate/cli"
	"github.com/groupgate/groupgate/config"
	"github.com/groupgate/groupgate/internal/apitest"
	"github.com/groupgate/groupgate/internal/testkit"
	"github.com/groupgate/groupgate/server"
	"github.com/groupgate/groupgate/tenants"
)

// gateway is the real server on a loopback port, with the demo tenant SHIP
// and project MOH on the built-in TechPass simulator, as `make run` has.
type gateway struct {
	url        string
	projectKey string // SHIP/MOH
	opKey      string // operator
	http       *http.Client
	// secrets must never appear in any output of the command line.
	secrets []string
}

// startGateway runs the server until the test ends. interval is the
// upstream pacing: short for speed, long to keep operations queued. mutate,
// if given, changes the configuration last.
func startGateway(t *testing.T, interval time.Duration, mutate ...func(*config.Config)) *gateway {
	t.Helper()
	cfg := config.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.AllowHTTP = true
	cfg.StorePath = filepath.Join(t.TempDir(), "groupgate.db")
	cfg.Interval = config.Duration(interval)
	cfg.PaceGuard = config.Duration(5 * time.Millisecond)
	cfg.ReconcileEvery = 0
	cfg.RateLimit = config.RateLimitConfig{PerSecond: 10000, Burst: 10000}
	cfg.Retry.MaxFailures, cfg.Retry.BaseDelay, cfg.Retry.MaxDelay = 3, config.Duration(interval), config.Duration(10*interval)
	projectKey := server.AddDemoTenant(&cfg)
	for _, m := range mutate {
		m(&cfg)
	}
	opKey, _ := tenants.NewKey()
	srv, err := server.New(cfg, server.Options{
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		OperatorKey: opKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	testkit.Serve(t, srv.Run)
	return &gateway{
		url: srv.URL(), projectKey: projectKey, opKey: opKey,
		http:    apitest.NewClient(t, nil),
		secrets: []string{projectKey, opKey},
	}
}

// result is one command line's outcome.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// run runs one command line against g with the environment vars (on top of
// GROUPGATE_URL), validating every response against openapi.yaml and
// checking that no credential shows in the output.
func (g *gateway) run(t *testing.T, vars map[string]string, args ...string) result {
	t.Helper()
	env := map[string]string{"GROUPGATE_URL": g.url}
	for k, v := range vars {
		env[k] = v
	}
	return g.runEnv(t, cli.Env{Getenv: func(k string) string { return env[k] }}, args...)
}

// runBadInput is run for a command line that sends a request the contract
// refuses on purpose: the request is not validated, the answer still is.
func (g *gateway) runBadInput(t *testing.T, vars map[string]string, args ...string) result {
	t.Helper()
	env := map[string]string{"GROUPGATE_URL": g.url}
	for k, v := range vars {
		env[k] = v
	}
	bad := &http.Client{Transport: badInput{apitest.NewTransport(t, nil)}}
	return g.runEnv(t, cli.Env{Getenv: func(k string) string { return env[k] }, HTTPClient: bad}, args...)
}

// badInput marks every request it carries with apitest.BadInput.
type badInput struct{ next http.RoundTripper }

func (b badInput) RoundTrip(req *http.Request) (*http.Response, error) {
	return b.next.RoundTrip(apitest.BadInput(req))
}

func (g *gateway) runEnv(t *testing.T, env cli.Env, args ...string) result {
	t.Helper()
	return g.runCtx(t, t.Context(), env, args...)
}

// runCtx is runEnv with a context, to interrupt the command. Besides g's
// secrets, the credential the command line was given must not show.
func (g *gateway) runCtx(t *testing.T, ctx context.Context, env cli.Env, args ...string) result {
	t.Helper()
	secrets := slices.Clone(g.secrets)
	files := []string{env.Getenv("GROUPGATE_KEY_FILE")}
	for i, a := range args {
		if strings.TrimLeft(a, "-") == "key-file" && i+1 < len(args) {
			files = append(files, args[i+1])
		}
	}
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil && f != "" {
			secrets = append(secrets, strings.TrimSpace(string(b)))
		}
	}
	secrets = append(secrets, strings.TrimSpace(env.Getenv("GROUPGATE_KEY")))
	var stdout, stderr bytes.Buffer
	env.Stdout, env.Stderr = &stdout, &stderr
	if env.HTTPClient == nil {
		env.HTTPClient = g.http
	}
	if env.PollInterval == 0 {
		env.PollInterval = 20 * time.Millisecond
	}
	code := cli.Run(ctx, args, env)
	r := result{code: code, stdout: stdout.String(), stderr: stderr.String()}
	for _, s := range secrets {
		if s != "" && strings.Contains(r.stdout+r.stderr, s) {
			t.Errorf("%q: a credential appears in the output:\n%s", args, r)
		}
	}
	return r
}

// project is the environment of the demo project's team.
func (g *gateway) project() map[string]string {
	return map[string]string{"GROUPGATE_KEY": g.projectKey, "GROUPGATE_TENANT": "SHIP", "GROUPGATE_PROJECT": "MOH"}
}

// want fails the test unless r exited with code.
func want(t *testing.T, r result, code int, args ...string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("%q: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", args, r.code, code, r.stdout, r.stderr)
	}
}

// decode parses a -o json output into v.
func decode(t *testing.T, r result, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
		t.Fatalf("-o json output is not JSON: %v\n%s", err, r.stdout)
	}
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // past the umask
		t.Fatal(err)
	}
}
