package server_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate/internal/apitest"
	"github.com/groupgate/groupgate/server"
)

// demo is a running `groupgate -demo` (what make run starts), in process.
type demo struct {
	base, key, operator string
	stop                func()
}

// runDemo starts the demo with its store in dir and waits for its banner.
func runDemo(t *testing.T, dir string, getenv func(string) string) demo {
	t.Helper()
	out := &syncBuffer{}
	m := server.NewMain(out, &syncBuffer{}, getenv)
	if err := m.ParseFlags([]string{"-demo", "-listen", "127.0.0.1:0", "-store", filepath.Join(dir, "groupgate.db")}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	stopped := false
	d := demo{stop: func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("demo: %v", err)
		}
	}}
	t.Cleanup(d.stop)
	deadline := time.Now().Add(10 * time.Second)
	for d.operator == "" {
		select {
		case err := <-done:
			t.Fatalf("demo stopped: %v", err)
		default:
		}
		lines := strings.Split(out.String(), "\n")
		for i, l := range lines {
			if rest, ok := strings.CutPrefix(l, "groupgate is listening on "); ok {
				d.base = rest
			}
			if strings.HasPrefix(l, "Demo tenant") && i+1 < len(lines) {
				d.key = strings.TrimSpace(lines[i+1])
			}
			if strings.HasPrefix(l, "Operator key") && i+1 < len(lines) && strings.HasPrefix(strings.TrimSpace(lines[i+1]), "gk_") {
				d.operator = strings.TrimSpace(lines[i+1])
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no banner:\n%s", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return d
}

// TestDemoKEK: the demo makes a key-encryption key on its first start, beside
// its store and readable by its owner only, and keeps it across restarts, so
// onboarding a tenant with a credential by value works under make run and
// the sealed value stays usable.
func TestDemoKEK(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	noEnv := func(string) string { return "" }
	d := runDemo(t, dir, noEnv)
	kekPath := filepath.Join(dir, "demo.kek")
	fi, err := os.Stat(kekPath)
	if err != nil {
		t.Fatalf("no demo key-encryption key: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("demo.kek mode %v, want 0600", fi.Mode().Perm())
	}
	first, err := os.ReadFile(kekPath)
	if err != nil {
		t.Fatal(err)
	}

	hc := apitest.NewClient(t, http.DefaultTransport)
	call := func(d demo, method, path, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, d.base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+d.operator)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		_, _ = io.Copy(&b, resp.Body)
		return resp.StatusCode, b.String()
	}
	const secret = "demo-kek-canary-api-key"
	status, body := call(d, "POST", "/v1/tenants", `{"name":"ACME","techpass":{"apiKey":{"value":"`+secret+`"}}}`)
	if status != http.StatusCreated || !strings.Contains(body, `"kind":"stored"`) || strings.Contains(body, secret) {
		t.Fatalf("onboarding with a credential by value under the demo: %d %s", status, body)
	}
	d.stop()

	// A second start reuses the key and the store.
	d = runDemo(t, dir, noEnv)
	again, err := os.ReadFile(kekPath)
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != string(first) {
		t.Error("the demo replaced its key-encryption key on a restart; sealed credentials would be lost")
	}
	if status, body := call(d, "GET", "/v1/tenants/ACME", ""); status != http.StatusOK || !strings.Contains(body, `"kind":"stored"`) {
		t.Errorf("tenant after restart: %d %s", status, body)
	}
	d.stop()

	// A configured key wins: no demo key is made.
	other := filepath.Join(t.TempDir(), "data")
	d = runDemo(t, other, func(k string) string {
		if k == "GROUPGATE_KEK" {
			return strings.Repeat("ab", 32)
		}
		return ""
	})
	d.stop()
	if _, err := os.Stat(filepath.Join(other, "demo.kek")); !os.IsNotExist(err) {
		t.Errorf("demo.kek made although GROUPGATE_KEK is set: %v", err)
	}
}

// TestDemoOnPostgresNeedsKEK: the demo does not make a key-encryption key
// of its own on PostgreSQL (each replica would have another one); it asks
// for a shared one, naming the settings, before it connects anywhere.
func TestDemoOnPostgresNeedsKEK(t *testing.T) {
	t.Chdir(t.TempDir())
	env := map[string]string{"GROUPGATE_STORE": "postgres", "GROUPGATE_POSTGRES_DSN": "postgres://groupgate@127.0.0.1:1/groupgate"}
	m := server.NewMain(&syncBuffer{}, &syncBuffer{}, func(k string) string { return env[k] })
	if err := m.ParseFlags([]string{"-demo", "-listen", "127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	err := m.Run(t.Context())
	if err == nil || !strings.Contains(err.Error(), "kek_file") || !strings.Contains(err.Error(), "GROUPGATE_KEK") {
		t.Fatalf("Run = %v, want a refusal naming kek_file and GROUPGATE_KEK", err)
	}
	if entries, _ := os.ReadDir("."); len(entries) != 0 {
		t.Errorf("the refused demo wrote %d files in its working directory", len(entries))
	}
}
