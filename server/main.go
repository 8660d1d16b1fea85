package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/groupgate/groupgate/config"
	"github.com/groupgate/groupgate/tenants"
)

// Main is the groupgate program: flags, configuration, logging and the
// server's life. cmd/groupgate only wires it to the process.
type Main struct {
	// config.Config is filled by ParseFlags.
	Config config.Config
	// Demo, set by -demo, adds a demo tenant and project with a fresh key.
	Demo bool

	stdout, stderr io.Writer
	getenv         func(string) string
	demoKey        string
	demoOperator   string
}

// NewMain returns a Main that prints to stdout and logs to stderr.
func NewMain(stdout, stderr io.Writer, getenv func(string) string) *Main {
	return &Main{Config: config.DefaultConfig(), stdout: stdout, stderr: stderr, getenv: getenv}
}

// ParseFlags reads, in order: defaults, the config file (-config or
// GROUPGATE_CONFIG), GROUPGATE_* variables, then flags, and validates.
func (m *Main) ParseFlags(args []string) error {
	fs := flag.NewFlagSet("groupgate", flag.ContinueOnError)
	fs.SetOutput(m.stderr)
	configPath := fs.String("config", m.getenv("GROUPGATE_CONFIG"), "YAML configuration file")
	fs.BoolVar(&m.Demo, "demo", false, "add a demo tenant SHIP with project MOH and print a fresh API key")
	// Flags are parsed into a copy of the defaults and applied after the
	// file and the environment, and only where given, so they win.
	flagged := config.DefaultConfig()
	flagged.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *configPath != "" {
		if err := m.Config.LoadFile(*configPath); err != nil {
			return err
		}
	}
	if err := m.Config.ApplyEnv(m.getenv); err != nil {
		return err
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "listen":
			m.Config.Listen = flagged.Listen
		case "store":
			m.Config.StorePath = flagged.StorePath
		case "log-level":
			m.Config.LogLevel = flagged.LogLevel
		case "log-format":
			m.Config.LogFormat = flagged.LogFormat
		}
	})
	if m.Demo {
		// The demo is a local trial: plain HTTP unless a certificate is set.
		m.Config.AllowHTTP = m.Config.AllowHTTP || m.Config.TLS.CertFile == ""
		if m.Config.TLS.CertFile == "" {
			m.Config.Console.SecureCookies = false // the browser reaches it over plain HTTP
		}
		m.demoKey = AddDemoTenant(&m.Config)
		if m.Config.OperatorKeyFile == "" && m.getenv("GROUPGATE_OPERATOR_KEY") == "" {
			m.demoOperator, _ = tenants.NewKey()
		}
	}
	return m.Config.Validate()
}

// AddDemoTenant adds tenant SHIP with project MOH, on the built-in
// simulator, unless a tenant SHIP exists; it returns a fresh key for
// SHIP/MOH that is valid until the process stops ("" if nothing was added).
func AddDemoTenant(cfg *config.Config) string {
	for _, t := range cfg.Tenants {
		if strings.EqualFold(t.Name, "SHIP") {
			return ""
		}
	}
	key, stored := tenants.NewKey()
	cfg.Tenants = append(cfg.Tenants, config.TenantConfig{
		Name: "SHIP",
		Projects: []config.ProjectConfig{{Name: "MOH", Keys: []config.KeyConfig{{
			ID: stored.ID, Hash: tenants.HashString(stored.Hash),
		}}}},
	})
	return key
}

// NewLogger returns the JSON (or text) logger the configuration asks for.
func NewLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// Run starts the server and blocks until ctx ends and it has shut down.
func (m *Main) Run(ctx context.Context) error {
	logger := NewLogger(m.Config, m.stderr)
	if m.Demo && m.Config.KEKFile == "" && m.getenv("GROUPGATE_KEK") == "" {
		if m.Config.Store == config.StorePostgres {
			// Every replica must seal and open with one key: a file made
			// here would be this process's alone.
			return errors.New("-demo on PostgreSQL needs a key-encryption key shared by every replica: set kek_file or GROUPGATE_KEK (the demo makes one only beside a bbolt store)")
		}
		path, err := demoKEK(m.Config.StorePath)
		if err != nil {
			return err
		}
		m.Config.KEKFile = path
	}
	srv, err := New(m.Config, Options{Logger: logger, Getenv: m.getenv, OperatorKey: m.demoOperator})
	if err != nil {
		return err
	}
	m.printBanner(srv)
	return srv.Run(ctx)
}

func (m *Main) printBanner(srv *Server) {
	w := m.stdout
	base := srv.URL()
	fmt.Fprintf(w, "groupgate is listening on %s\n", base)
	fmt.Fprintf(w, "  API docs:   %s/docs\n", base)
	fmt.Fprintf(w, "  contract:   %s/openapi.yaml\n", base)
	if u := srv.SimulatorURL(); u != "" {
		fmt.Fprintf(w, "  upstream:   built-in TechPass simulator at %s (not the real TechPass; its groups live in memory)\n", u)
	}
	if m.demoKey == "" {
		return
	}
	fmt.Fprintf(w, "\nDemo tenant SHIP, project MOH. API key (valid until this process stops):\n  %s\n\n", m.demoKey)
	fmt.Fprintf(w, "Create a group (answers 202 with an operation to poll):\n")
	fmt.Fprintf(w, "  curl -sS -X POST %s/v1/tenants/SHIP/projects/MOH/groups -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' -d '{\"name\":\"billing\",\"description\":\"Billing team\"}'\n\n", base, m.demoKey)
	fmt.Fprintf(w, "List the project's groups (SHIP:MOH:billing appears once created):\n")
	fmt.Fprintf(w, "  curl -sS %s/v1/tenants/SHIP/projects/MOH/groups -H 'Authorization: Bearer %s'\n\n", base, m.demoKey)
	fmt.Fprintf(w, "Add members (the built-in simulator knows user001@example.gov.sg to user100@example.gov.sg):\n")
	fmt.Fprintf(w, "  curl -sS -X POST %s/v1/tenants/SHIP/projects/MOH/groups/billing/members -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' -H 'Prefer: wait=10' -d '{\"users\":[\"user001@example.gov.sg\",\"user002@example.gov.sg\"]}'\n\n", base, m.demoKey)
	if m.demoOperator != "" {
		fmt.Fprintf(w, "Operator key for the admin API (tenants, projects, keys, audit; valid until this process stops):\n  %s\n", m.demoOperator)
		fmt.Fprintf(w, "  curl -sS %s/v1/audit -H 'Authorization: Bearer %s'\n\n", base, m.demoOperator)
	}
}

// demoKEK returns the demo's key-encryption key file, demo.kek beside the
// store, creating it (0600, in a 0700 directory) with a fresh random key on
// the first start, so that credentials written through the admin API can be
// sealed in the demo too, and opened again after a restart.
func demoKEK(storePath string) (string, error) {
	dir := filepath.Dir(storePath)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("demo key-encryption key: %w", err)
	}
	path := filepath.Join(dir, "demo.kek")
	key := make([]byte, 32)
	_, _ = rand.Read(key) // never fails (crypto/rand)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return path, nil // kept from an earlier start
	}
	if err != nil {
		return "", fmt.Errorf("demo key-encryption key: %w", err)
	}
	_, err = fmt.Fprintln(f, hex.EncodeToString(key))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return "", fmt.Errorf("demo key-encryption key: %w", err)
	}
	return path, nil
}
