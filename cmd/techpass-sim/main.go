// Command techpass-sim serves the TechPass simulator (package
// techpass/techpasssim) on its own, for local runs of the gateway and for
// tests in other processes: an Azure AD v2 token endpoint and the Automation
// API for one namespace, plus the /_sim/ admin endpoints.
//
// Credentials come from files or the environment, never from flags (flags
// show up in process listings). When none are given, random ones are
// generated into files readable only by the user, and their paths, never
// their values, are printed.
//
// Usage:
//
//	techpass-sim [-listen 127.0.0.1:8081] [-namespace SHIP] [-client-secret-file F] [-api-key-file F] [-users 10] [-routes F] ...
//
// With -webhook-url, users deleted or updated through DELETE and PATCH
// /_sim/users/{id} are sent to the gateway as signed TechPass webhooks.
//
// The user directory starts with -users demo users (techpasssim.DemoUsers:
// user001@example.gov.sg, ...); more can be added with POST /_sim/users.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/groupgate/groupgate/techpass"
	"github.com/groupgate/groupgate/techpass/techpasssim"
)

// maxDemoUsers bounds -users: a demo directory, not a load test.
const maxDemoUsers = 10000

// Environment variables read when the corresponding file flag is not set.
const (
	envClientSecret = "TECHPASS_SIM_CLIENT_SECRET"
	envAPIKey       = "TECHPASS_SIM_API_KEY"
	envWebhook      = "TECHPASS_SIM_WEBHOOK_SECRET"
)

func main() {
	m := NewMain()
	if err := m.ParseFlags(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "techpass-sim:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := m.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "techpass-sim:", err)
		os.Exit(1)
	}
}

// Main is the techpass-sim program: its settings (set by ParseFlags), then
// Open to serve, Close to stop.
type Main struct {
	// Settings, one per flag of the same name; see ParseFlags.
	Listen           string
	Namespace        string
	DirectoryID      string
	ClientID         string
	ClientSecretFile string
	APIKeyFile       string
	CertFile         string
	CredentialsDir   string
	APIURL           string
	Interval         time.Duration
	TokenLifetime    time.Duration
	GroupLimit       int
	Users            int
	MemberPageSize   int
	// RoutesFile holds route corrections as JSON, {"getGroup": {"method",
	// "path", "params": {"page": "pageNumber"}}}, as the gateway's
	// techpass.routes: the simulator then serves the corrected table.
	RoutesFile string
	// WebhookURL, if set, receives the namespace's webhooks (users deleted
	// or updated through /_sim/users), signed with the secret of
	// WebhookSecretFile (else $TECHPASS_SIM_WEBHOOK_SECRET), retried every
	// WebhookRetry.
	WebhookURL        string
	WebhookSecretFile string
	WebhookRetry      time.Duration

	// Stdout receives the start banner; Stderr the logs and flag errors.
	Stdout, Stderr io.Writer
	// Getenv reads the environment (os.Getenv by default).
	Getenv func(string) string

	log        *slog.Logger
	srv        *http.Server
	done       chan error
	baseURL    string
	sim        *techpasssim.Simulator
	removeDir  string // a generated credentials directory, removed by Close
	secretFile string // where the client secret is, when generated
	keyFile    string // where the API key is, when generated
}

// NewMain returns a Main with the defaults of the flags.
func NewMain() *Main {
	return &Main{
		Listen:         "127.0.0.1:8081",
		Namespace:      "SHIP",
		DirectoryID:    "00000000-0000-4000-8000-00000000d1d0",
		ClientID:       "00000000-0000-4000-8000-0000000c1d00",
		Interval:       techpasssim.DefaultInterval,
		TokenLifetime:  techpasssim.DefaultTokenLifetime,
		GroupLimit:     techpasssim.DefaultGroupLimit,
		Users:          10,
		MemberPageSize: techpasssim.DefaultMemberPageSize,
		WebhookRetry:   techpasssim.DefaultWebhookRetry,
		Stdout:         os.Stdout,
		Stderr:         os.Stderr,
		Getenv:         os.Getenv,
	}
}

// ParseFlags sets m from the command line and reports every invalid value
// at once.
func (m *Main) ParseFlags(args []string) error {
	fs := flag.NewFlagSet("techpass-sim", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	fs.StringVar(&m.Listen, "listen", m.Listen, "address to serve on")
	fs.StringVar(&m.Namespace, "namespace", m.Namespace, "TechPass namespace to simulate")
	fs.StringVar(&m.DirectoryID, "directory-id", m.DirectoryID, "Azure AD directory (tenant) id in the token URL")
	fs.StringVar(&m.ClientID, "client-id", m.ClientID, "Azure AD client id of the namespace's application")
	fs.StringVar(&m.ClientSecretFile, "client-secret-file", m.ClientSecretFile, "file holding the client secret (else $"+envClientSecret+", else generated)")
	fs.StringVar(&m.APIKeyFile, "api-key-file", m.APIKeyFile, "file holding up to 4 API keys, one a line (else $"+envAPIKey+", else generated)")
	fs.StringVar(&m.CertFile, "cert-file", m.CertFile, "PEM certificate whose RSA key may sign client assertions (optional)")
	fs.StringVar(&m.CredentialsDir, "credentials-dir", m.CredentialsDir, "directory for generated credentials (default: a new temporary directory, removed on exit)")
	fs.StringVar(&m.APIURL, "api-url", m.APIURL, "Automation API base URL that token scopes must name (default: the URL the request reached)")
	fs.DurationVar(&m.Interval, "interval", m.Interval, "minimum start-to-start gap between requests of the namespace")
	fs.DurationVar(&m.TokenLifetime, "token-lifetime", m.TokenLifetime, "access token lifetime")
	fs.IntVar(&m.GroupLimit, "group-limit", m.GroupLimit, "groups the namespace may hold")
	fs.IntVar(&m.Users, "users", m.Users, fmt.Sprintf("demo users to seed the directory with, user001@example.gov.sg and on (at most %d)", maxDemoUsers))
	fs.IntVar(&m.MemberPageSize, "member-page-size", m.MemberPageSize, "members per page of the list-members answer")
	fs.StringVar(&m.RoutesFile, "routes", m.RoutesFile, `JSON file of route corrections, {"getGroup": {"method", "path", "params"}} (optional)`)
	fs.StringVar(&m.WebhookURL, "webhook-url", m.WebhookURL, "URL receiving the namespace's webhooks, e.g. http://127.0.0.1:8080/v1/tenants/SHIP/webhooks/techpass (optional)")
	fs.StringVar(&m.WebhookSecretFile, "webhook-secret-file", m.WebhookSecretFile, "file holding the webhook secret (else $"+envWebhook+"); needed with -webhook-url")
	fs.DurationVar(&m.WebhookRetry, "webhook-retry", m.WebhookRetry, "gap between attempts of an unanswered webhook delivery")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	return m.validate()
}

func (m *Main) validate() error {
	var errs []error
	if m.Listen == "" {
		errs = append(errs, errors.New("-listen is required"))
	}
	if m.Namespace == "" || m.DirectoryID == "" || m.ClientID == "" {
		errs = append(errs, errors.New("-namespace, -directory-id and -client-id must not be empty"))
	}
	if m.Interval <= 0 {
		errs = append(errs, errors.New("-interval must be positive"))
	}
	if m.TokenLifetime < time.Second {
		errs = append(errs, errors.New("-token-lifetime must be at least 1s"))
	}
	if m.GroupLimit <= 0 {
		errs = append(errs, errors.New("-group-limit must be positive"))
	}
	if m.Users < 0 || m.Users > maxDemoUsers {
		errs = append(errs, fmt.Errorf("-users must be within [0, %d]", maxDemoUsers))
	}
	if m.WebhookRetry <= 0 {
		errs = append(errs, errors.New("-webhook-retry must be positive"))
	}
	if m.MemberPageSize <= 0 {
		errs = append(errs, errors.New("-member-page-size must be positive"))
	}
	if _, err := m.routes(); err != nil {
		errs = append(errs, err)
	}
	if err := m.config().Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// routes returns the route table served: the built-in one, corrected by
// -routes.
func (m *Main) routes() ([]techpass.Route, error) {
	if m.RoutesFile == "" {
		return techpass.Routes(), nil
	}
	b, err := os.ReadFile(m.RoutesFile)
	if err != nil {
		return nil, fmt.Errorf("-routes: %w", err)
	}
	var raw map[techpass.RouteName]struct {
		Method string            `json:"method"`
		Path   string            `json:"path"`
		Params map[string]string `json:"params"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("-routes %s: %w", m.RoutesFile, err)
	}
	o := make(map[techpass.RouteName]techpass.RouteOverride, len(raw))
	for n, r := range raw {
		o[n] = techpass.RouteOverride{Method: r.Method, Path: r.Path, Params: r.Params}
	}
	t, err := techpass.ResolveRoutes(o)
	if err != nil {
		return nil, fmt.Errorf("-routes %s: %w", m.RoutesFile, err)
	}
	return t, nil
}

func (m *Main) config() techpasssim.Config {
	return techpasssim.Config{
		Interval:       m.Interval,
		TokenLifetime:  m.TokenLifetime,
		GroupLimit:     m.GroupLimit,
		APIURL:         m.APIURL,
		Users:          techpasssim.DemoUsers(min(max(m.Users, 0), maxDemoUsers)),
		MemberPageSize: m.MemberPageSize,
		Logger:         slog.New(slog.NewTextHandler(m.Stderr, nil)),
	}
}

// Run serves until ctx is done, then shuts down gracefully.
func (m *Main) Run(ctx context.Context) error {
	if err := m.Open(); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case err := <-m.done:
		_ = m.Close()
		return fmt.Errorf("serve: %w", err)
	}
	return m.Close()
}

// Open loads or generates the credentials, starts serving and prints where.
func (m *Main) Open() error {
	cfg := m.config()
	routes, err := m.routes()
	if err != nil {
		return err
	}
	cfg.Routes = routes
	m.log = cfg.Logger
	ns := techpasssim.Namespace{Name: m.Namespace, DirectoryID: m.DirectoryID, ClientID: m.ClientID}
	if ns.Certificate, err = readCertificate(m.CertFile); err != nil {
		return err
	}
	if ns.ClientSecret, err = m.readSecret(); err != nil {
		return err
	}
	if ns.APIKeys, err = m.readAPIKeys(); err != nil {
		return err
	}
	if err := m.generateMissing(&ns); err != nil {
		m.cleanup()
		return err
	}

	sim := techpasssim.New(cfg)
	if err := sim.AddNamespace(ns); err != nil {
		m.cleanup()
		return fmt.Errorf("namespace: %w", err)
	}
	if m.WebhookURL != "" {
		secret, err := m.readWebhookSecret()
		if err == nil {
			err = sim.SetWebhook(ns.Name, techpasssim.Webhook{URL: m.WebhookURL, Secret: secret, RetryEvery: m.WebhookRetry})
		}
		if err != nil {
			m.cleanup()
			return fmt.Errorf("webhook: %w", err)
		}
	}
	m.sim = sim
	ln, err := net.Listen("tcp", m.Listen)
	if err != nil {
		m.cleanup()
		return fmt.Errorf("listen: %w", err)
	}
	m.baseURL = "http://" + displayAddr(ln.Addr())
	m.srv = &http.Server{Handler: sim.Handler(), ReadHeaderTimeout: 10 * time.Second}
	m.done = make(chan error, 1)
	go func() { m.done <- m.srv.Serve(ln) }()

	tokenURL := techpasssim.TokenURL(m.baseURL, m.DirectoryID)
	m.log.Info("techpass-sim listening", "namespace", m.Namespace, "base_url", m.baseURL, "token_url", tokenURL)
	m.printBanner(ns, tokenURL)
	return nil
}

// BaseURL is the Automation API base URL being served, once Open returned.
func (m *Main) BaseURL() string { return m.baseURL }

// Close stops serving, letting requests in flight finish for a few seconds,
// and removes generated credentials.
func (m *Main) Close() error {
	defer m.cleanup()
	if m.srv == nil {
		return nil
	}
	m.sim.StopWebhooks()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.srv.Shutdown(ctx); err != nil {
		_ = m.srv.Close()
		return fmt.Errorf("shutdown: %w", err)
	}
	m.log.Info("techpass-sim stopped")
	return nil
}

func (m *Main) cleanup() {
	if m.removeDir != "" {
		_ = os.RemoveAll(m.removeDir)
		m.removeDir = ""
	}
}

func (m *Main) printBanner(ns techpasssim.Namespace, tokenURL string) {
	w := m.Stdout
	fmt.Fprintf(w, "techpass-sim serving namespace %s\n", ns.Name)
	fmt.Fprintf(w, "  Automation API base URL: %s\n", m.baseURL)
	fmt.Fprintf(w, "  token URL:               %s\n", tokenURL)
	fmt.Fprintf(w, "  scope:                   %s\n", techpasssim.Scope(m.baseURL))
	fmt.Fprintf(w, "  directory id:            %s\n", ns.DirectoryID)
	fmt.Fprintf(w, "  client id:               %s\n", ns.ClientID)
	if m.secretFile != "" {
		fmt.Fprintf(w, "  client secret file:      %s (generated)\n", m.secretFile)
	}
	if m.keyFile != "" {
		fmt.Fprintf(w, "  API key file:            %s (generated)\n", m.keyFile)
	}
	if m.Users > 0 {
		fmt.Fprintf(w, "  demo users:              %d, user001@example.gov.sg to user%03d@example.gov.sg (%s/_sim/users)\n", m.Users, m.Users, m.baseURL)
	}
	if m.WebhookURL != "" {
		fmt.Fprintf(w, "  webhooks to:             %s (retried every %s)\n", m.WebhookURL, m.WebhookRetry)
	}
	fmt.Fprintf(w, "  stats:                   %s/_sim/stats\n", m.baseURL)
}

// readWebhookSecret reads the webhook secret from -webhook-secret-file or
// the environment.
func (m *Main) readWebhookSecret() (string, error) {
	s := strings.TrimSpace(m.Getenv(envWebhook))
	if m.WebhookSecretFile != "" {
		b, err := os.ReadFile(m.WebhookSecretFile)
		if err != nil {
			return "", err
		}
		s = strings.TrimSpace(string(b))
	}
	if s == "" {
		return "", errors.New("-webhook-url needs a secret: -webhook-secret-file or $" + envWebhook)
	}
	return s, nil
}

// readSecret reads the client secret from -client-secret-file or the
// environment; "" means none was given.
func (m *Main) readSecret() (string, error) {
	if m.ClientSecretFile == "" {
		return strings.TrimSpace(m.Getenv(envClientSecret)), nil
	}
	b, err := os.ReadFile(m.ClientSecretFile)
	if err != nil {
		return "", fmt.Errorf("client secret: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("client secret: %s is empty", m.ClientSecretFile)
	}
	return s, nil
}

// readAPIKeys reads the API keys from -api-key-file (one a line) or the
// environment; nil means none was given.
func (m *Main) readAPIKeys() ([]string, error) {
	if m.APIKeyFile == "" {
		if k := strings.TrimSpace(m.Getenv(envAPIKey)); k != "" {
			return []string{k}, nil
		}
		return nil, nil
	}
	b, err := os.ReadFile(m.APIKeyFile)
	if err != nil {
		return nil, fmt.Errorf("API keys: %w", err)
	}
	var keys []string
	for line := range strings.Lines(string(b)) {
		if k := strings.TrimSpace(line); k != "" {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("API keys: %s holds none", m.APIKeyFile)
	}
	return keys, nil
}

// generateMissing generates a client secret (unless a secret or a
// certificate was given) and an API key (unless one was given), and writes
// them to files only the user can read.
func (m *Main) generateMissing(ns *techpasssim.Namespace) error {
	needSecret := ns.ClientSecret == "" && ns.Certificate == nil
	needKey := len(ns.APIKeys) == 0
	if !needSecret && !needKey {
		return nil
	}
	dir := m.CredentialsDir
	if dir == "" {
		d, err := os.MkdirTemp("", "techpass-sim-")
		if err != nil {
			return fmt.Errorf("credentials directory: %w", err)
		}
		dir, m.removeDir = d, d
	}
	if needSecret {
		ns.ClientSecret = rand.Text() + rand.Text()
		m.secretFile = filepath.Join(dir, "client-secret")
		if err := writePrivate(m.secretFile, ns.ClientSecret); err != nil {
			return err
		}
	}
	if needKey {
		ns.APIKeys = []string{rand.Text()}
		m.keyFile = filepath.Join(dir, "api-key")
		if err := writePrivate(m.keyFile, ns.APIKeys[0]); err != nil {
			return err
		}
	}
	return nil
}

// writePrivate writes value to path with mode 0600, whatever mode an
// existing file had. No newline follows the value, so that tools reading the
// whole file (curl --data-urlencode name@file) get exactly the credential.
func writePrivate(path, value string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write credential: %w", err)
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("write credential: %w", err)
	}
	if _, err := f.WriteString(value); err != nil {
		f.Close()
		return fmt.Errorf("write credential: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write credential: %w", err)
	}
	return nil
}

// readCertificate reads the first certificate of a PEM file; "" means none.
func readCertificate(path string) (*x509.Certificate, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			return nil, fmt.Errorf("certificate: no CERTIFICATE block in %s", path)
		}
		if block.Type == "CERTIFICATE" {
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("certificate %s: %w", path, err)
			}
			return cert, nil
		}
	}
}

// displayAddr is addr as a client can dial it: an unspecified listen
// address (":8081", "0.0.0.0:8081") is shown as loopback.
func displayAddr(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok || !tcp.IP.IsUnspecified() {
		return addr.String()
	}
	return net.JoinHostPort("127.0.0.1", fmt.Sprint(tcp.Port))
}
