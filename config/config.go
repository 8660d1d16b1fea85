// Package config holds the service's configuration: its shape (Config and
// the sections it holds, with their YAML names), its defaults, reading it
// from a YAML file, GROUPGATE_* variables and flags, and its validation.
// Package server is the only one that reads it; every other package receives
// built dependencies.
package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/groupgate/groupgate/names"
	"github.com/groupgate/groupgate/techpass"
	"github.com/groupgate/groupgate/tenants"
)

// Duration is a time.Duration written in configuration as "1s", "250ms".
type Duration time.Duration

// UnmarshalYAML reads a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration like 1s or 250ms", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes a Go duration string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// Config is the whole service configuration. Build it with DefaultConfig,
// then LoadFile, then ApplyEnv and flags, then call Validate.
type Config struct {
	// Listen is the API's address. Default 127.0.0.1:8080.
	Listen string `yaml:"listen"`
	// TLS serves HTTPS from a certificate and key, reloaded when they change.
	TLS TLSConfig `yaml:"tls"`
	// AllowHTTP permits plain HTTP when no TLS certificate is configured
	// (behind a TLS-terminating proxy, or the local demo). Default false.
	AllowHTTP bool `yaml:"allow_http"`
	// MetricsListen, if set, also serves /metrics there without a
	// credential: an internal address for Prometheus.
	MetricsListen string `yaml:"metrics_listen"`
	// Store is the backend: bbolt (default) or postgres.
	Store string `yaml:"store"`
	// StorePath is the bbolt file. Default .data/groupgate.db.
	StorePath string `yaml:"store_path"`
	// Postgres configures the postgres store (config_postgres.go).
	Postgres PostgresConfig `yaml:"postgres"`
	// LogLevel is debug, info, warn or error. Default info.
	LogLevel string `yaml:"log_level"`
	// LogFormat is json or text. Default json.
	LogFormat string `yaml:"log_format"`
	// Interval is the default minimum gap between the starts of two upstream
	// requests of a tenant. Default 1s (TechPass's limit).
	Interval Duration `yaml:"interval"`
	// PaceGuard is added to every interval to absorb jitter (scheduling on
	// this host, the network), so the upstream never measures a gap under
	// the interval. Default 3ms, sized in docs/benchmarks.md ("Sizing the
	// pace guard").
	PaceGuard Duration `yaml:"pace_guard"`
	// GroupLimit is the default namespace group limit. Default 50.
	GroupLimit int `yaml:"group_limit"`
	// Retry bounds retries of failed upstream calls.
	Retry RetryConfig `yaml:"retry"`
	// MaxQueue is the most operations a tenant may have pending; beyond it
	// writes are refused with 429. Default 10000.
	MaxQueue int `yaml:"max_queue"`
	// MaxProjectQueue is the most operations one project may have pending.
	// Default 1000.
	MaxProjectQueue int `yaml:"max_project_queue"`
	// MaxWait caps Prefer: wait. Default 30s; 0 disables waiting.
	MaxWait Duration `yaml:"max_wait"`
	// IdempotencyTTL is how long an Idempotency-Key is remembered. Default 24h.
	IdempotencyTTL Duration `yaml:"idempotency_ttl"`
	// ReconcileEvery is how often each tenant's mirror is reconciled with
	// TechPass (a pass starts at start-up, then at this period), in upstream
	// slots no client operation wants. 0 reconciles only on request
	// (POST /v1/tenants/{tenant}/mirror). Default 10m.
	ReconcileEvery Duration `yaml:"reconcile_every"`
	// OperatorKeyFile holds the bootstrap operator API key (or set
	// GROUPGATE_OPERATOR_KEY). Without one, no operator can call the admin
	// API until one is configured.
	OperatorKeyFile string `yaml:"operator_key_file"`
	// KEKFile holds the key-encryption key (32 bytes, hex or base64) that
	// seals credentials written through the admin API (or set GROUPGATE_KEK).
	KEKFile string `yaml:"kek_file"`
	// KeyRotationAge flags API keys older than this. Default 180 days.
	KeyRotationAge Duration `yaml:"key_rotation_age"`
	// AuditRetention is how long audit entries are kept. Default 400 days.
	AuditRetention Duration `yaml:"audit_retention"`
	// AllowLoopbackJWKS lets identity providers publish their keys on
	// loopback (http or https to localhost or any *.localhost name,
	// 127.0.0.0/8 or ::1), and JWKS fetches dial loopback. For tests and
	// local development only: anyone who may register a provider could
	// then make the gateway call its own host's services. Private and other non-public addresses are refused
	// whatever this says. Default false.
	AllowLoopbackJWKS bool `yaml:"allow_loopback_jwks"`
	// RateLimit bounds each credential's requests.
	RateLimit RateLimitConfig `yaml:"rate_limit"`
	// ShutdownGrace is how long an upstream call in flight may finish at
	// shutdown. Default 10s.
	ShutdownGrace Duration `yaml:"shutdown_grace"`
	// UpstreamTimeout bounds one upstream HTTP exchange. Default 30s.
	UpstreamTimeout Duration `yaml:"upstream_timeout"`
	// Credentials governs the TechPass credentials and access tokens of
	// every tenant: token renewal, rotation checks, maximum age.
	Credentials CredentialsConfig `yaml:"credentials"`
	// Console configures the web console's sessions (/console).
	Console ConsoleConfig `yaml:"console"`
	// Simulator configures the built-in TechPass simulator used by tenants
	// without a techpass.api_url.
	Simulator SimulatorConfig `yaml:"simulator"`
	// Tenants and their projects and keys.
	Tenants []TenantConfig `yaml:"tenants"`
}

// RetryConfig bounds retries of failed upstream calls.
type RetryConfig struct {
	// MaxDuration is how long an operation keeps being retried through
	// transient failures (5xx, timeouts, connection errors, 429) before it
	// fails for good, from the first of them. Default 30m.
	MaxDuration Duration `yaml:"max_duration"`
	// MaxFailures, if positive, also fails an operation at this many
	// retryable failures (429s and failed adoption checks not counted).
	// Default 0: no bound on the count. Before max_duration it was the only
	// bound (default 6), which at a steady rate of transient faults failed
	// some operations by chance.
	MaxFailures int `yaml:"max_failures"`
	// BaseDelay is the first backoff ceiling, doubled per failure. Default 1s.
	BaseDelay Duration `yaml:"base_delay"`
	// MaxDelay caps the backoff. Default 1m.
	MaxDelay Duration `yaml:"max_delay"`
}

// TLSConfig names the server's certificate and key (PEM files).
type TLSConfig struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// RateLimitConfig is a token bucket per credential.
type RateLimitConfig struct {
	// PerSecond is the sustained rate. Default 20.
	PerSecond float64 `yaml:"per_second"`
	// Burst is how many requests may come at once. Default 40.
	Burst int `yaml:"burst"`
}

// ConsoleConfig bounds the web console's sessions.
type ConsoleConfig struct {
	// IdleTimeout ends a session without activity. Default 15m.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// MaxLifetime ends a session however active. Default 8h.
	MaxLifetime Duration `yaml:"max_lifetime"`
	// SecureCookies marks the console's cookies Secure (and names them
	// __Host-), as browsers must reach it over HTTPS: directly or through a
	// TLS-terminating proxy, which must pass the browser's Host header on
	// (the console compares the Origin of form posts with it). Default
	// true; -demo sets false when it serves plain HTTP. Always on with TLS.
	SecureCookies bool `yaml:"secure_cookies"`
}

// CredentialsConfig governs TechPass credentials and access tokens.
type CredentialsConfig struct {
	// TokenRenewalShare renews an access token once less than this share of
	// its lifetime remains, in (0, 1). Default 1/6 (a 20-minute token is
	// renewed with 200 s left).
	TokenRenewalShare float64 `yaml:"token_renewal_share"`
	// TokenRenewalMin is the least time before expiry at which a token is
	// renewed. Default 1m.
	TokenRenewalMin Duration `yaml:"token_renewal_min"`
	// MaxAge flags a credential older than this (a file by its modification
	// time) in /readyz and the logs. Default 180 days (4320h).
	MaxAge Duration `yaml:"max_age"`
	// CheckInterval is how often credential files are checked for changes
	// (SIGHUP checks at once). Default 30s.
	CheckInterval Duration `yaml:"check_interval"`
}

// SimulatorConfig configures the built-in TechPass simulator.
type SimulatorConfig struct {
	// Listen is the simulator's address. Default 127.0.0.1:0 (any free port).
	Listen string `yaml:"listen"`
	// SecretsDir receives the generated simulator credentials (files 0600,
	// in a directory made 0700 when missing). Default: "simulator" beside
	// the bbolt store file; with store: postgres, which has no local
	// directory, a private temporary directory (0700, under $TMPDIR) made
	// at start and removed at shutdown: the credentials are generated anew
	// at every start and serve only this process's simulator.
	SecretsDir string `yaml:"secrets_dir"`
	// Users is how many demo users the simulator knows
	// (user001@example.gov.sg and on). Default 100.
	Users int `yaml:"users"`
	// WebhookRetry is how often the simulator retries a webhook delivery
	// the gateway did not accept. Default 5m (TechPass's).
	WebhookRetry Duration `yaml:"webhook_retry"`
}

// TenantConfig is one TechPass namespace.
type TenantConfig struct {
	// Name is the namespace, e.g. SHIP.
	Name string `yaml:"name"`
	// GroupLimit overrides the default namespace group limit.
	GroupLimit int `yaml:"group_limit"`
	// Interval overrides the default upstream interval.
	Interval Duration `yaml:"interval"`
	// MaxQueue and MaxProjectQueue override the default queue limits.
	MaxQueue        int `yaml:"max_queue"`
	MaxProjectQueue int `yaml:"max_project_queue"`
	// TechPass holds the upstream settings; without api_url the tenant uses
	// the built-in simulator.
	TechPass TechPassConfig `yaml:"techpass"`
	// Projects allowed to manage groups in the tenant.
	Projects []ProjectConfig `yaml:"projects"`
}

// TechPassConfig is where and how a tenant reaches TechPass. Secrets are
// never written here, only where to read them.
type TechPassConfig struct {
	// APIURL is the Automation API base, e.g. https://api.techpass.gov.sg.
	APIURL string `yaml:"api_url"`
	// DirectoryID is the Azure AD directory (tenant) id.
	DirectoryID string `yaml:"directory_id"`
	// LoginURL is the Azure AD authority. Default https://login.microsoftonline.com.
	LoginURL string `yaml:"login_url"`
	// TokenURL overrides the token endpoint built from LoginURL and DirectoryID.
	TokenURL string `yaml:"token_url"`
	// ClientID is the application (client) id.
	ClientID string `yaml:"client_id"`
	// ClientSecretFile or ClientSecretEnv says where the client secret is.
	// Exactly one client credential is configured: a secret (file or
	// variable), or a certificate and its key.
	ClientSecretFile string `yaml:"client_secret_file"`
	ClientSecretEnv  string `yaml:"client_secret_env"`
	// ClientCertificateFile is the PEM certificate registered for the
	// application, for certificate client assertions (TechPass's
	// recommended credential), and ClientKeyFile its RSA private key; the
	// key may instead follow the certificate in ClientCertificateFile.
	ClientCertificateFile string `yaml:"client_certificate_file"`
	ClientKeyFile         string `yaml:"client_key_file"`
	// ClientAssertionAlg signs client assertions: RS256 (default) or PS256.
	ClientAssertionAlg string `yaml:"client_assertion_alg"`
	// APIKeyFile or APIKeyEnv says where the x-api-key value is.
	APIKeyFile string `yaml:"api_key_file"`
	APIKeyEnv  string `yaml:"api_key_env"`
	// Routes corrects Automation API routes by name (getGroup,
	// listGroups...): method, path and query parameter names; see
	// techpass.Routes for the built-in table.
	Routes map[string]RouteConfig `yaml:"routes"`
	// MembersSource is getGroup (default: members and owners through Get
	// Group) or listMembers (the assumed members route, no owners).
	MembersSource string `yaml:"members_source"`
	// MemberPageSize pages Get Group's members; 0 (default) reads the full
	// list in one request.
	MemberPageSize int `yaml:"member_page_size"`
	// WebhookSecretFile or WebhookSecretEnv says where the secret that
	// signs TechPass's webhooks is (optional; at most one). During a
	// changeover the previous secret, from PreviousWebhookSecretFile or
	// PreviousWebhookSecretEnv, is accepted too. Read at each delivery.
	WebhookSecretFile         string `yaml:"webhook_secret_file"`
	WebhookSecretEnv          string `yaml:"webhook_secret_env"`
	PreviousWebhookSecretFile string `yaml:"previous_webhook_secret_file"`
	PreviousWebhookSecretEnv  string `yaml:"previous_webhook_secret_env"`
}

// ProjectConfig is one downstream team.
type ProjectConfig struct {
	Name string `yaml:"name"`
	// GroupQuota bounds the project's groups; 0 (default) means only the
	// tenant's group limit applies.
	GroupQuota int         `yaml:"group_quota"`
	Keys       []KeyConfig `yaml:"keys"`
}

// KeyConfig is an issued API key, by id and hash only
// (groupgate newkey prints both).
type KeyConfig struct {
	ID        string    `yaml:"id"`
	Hash      string    `yaml:"hash"`
	Scopes    []string  `yaml:"scopes"`
	ExpiresAt time.Time `yaml:"expires_at"`
}

// DefaultConfig returns the configuration used when nothing is set.
func DefaultConfig() Config {
	return Config{
		Listen:          "127.0.0.1:8080",
		Store:           StoreBbolt,
		StorePath:       ".data/groupgate.db",
		LogLevel:        "info",
		LogFormat:       "json",
		Interval:        Duration(time.Second),
		PaceGuard:       Duration(3 * time.Millisecond),
		GroupLimit:      50,
		Retry:           RetryConfig{MaxDuration: Duration(30 * time.Minute), BaseDelay: Duration(time.Second), MaxDelay: Duration(time.Minute)},
		MaxQueue:        10000,
		MaxProjectQueue: 1000,
		MaxWait:         Duration(30 * time.Second),
		IdempotencyTTL:  Duration(24 * time.Hour),
		ReconcileEvery:  Duration(10 * time.Minute),
		KeyRotationAge:  Duration(180 * 24 * time.Hour),
		RateLimit:       RateLimitConfig{PerSecond: 20, Burst: 40},
		AuditRetention:  Duration(400 * 24 * time.Hour),
		ShutdownGrace:   Duration(10 * time.Second),
		UpstreamTimeout: Duration(30 * time.Second),
		Credentials: CredentialsConfig{
			TokenRenewalShare: techpass.DefaultRenewalShare,
			TokenRenewalMin:   Duration(techpass.DefaultRenewalMin),
			MaxAge:            Duration(180 * 24 * time.Hour),
			CheckInterval:     Duration(30 * time.Second),
		},
		Simulator: SimulatorConfig{Listen: "127.0.0.1:0", Users: 100},
		Console:   ConsoleConfig{IdleTimeout: Duration(15 * time.Minute), MaxLifetime: Duration(8 * time.Hour), SecureCookies: true},
	}
}

// LoadFile overlays the YAML file at path on c. Unknown keys are an error.
func (c *Config) LoadFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		return fmt.Errorf("parse config %s: %w", path, err)
	}
	return nil
}

// ApplyEnv overlays GROUPGATE_* environment variables read through getenv.
func (c *Config) ApplyEnv(getenv func(string) string) error {
	var errs []error
	str := func(name string, dst *string) {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	dur := func(name string, dst *Duration) {
		if v := getenv(name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %q is not a duration", name, v))
				return
			}
			*dst = Duration(d)
		}
	}
	str("GROUPGATE_LISTEN", &c.Listen)
	str("GROUPGATE_STORE_PATH", &c.StorePath)
	c.applyStoreEnv(getenv)
	str("GROUPGATE_LOG_LEVEL", &c.LogLevel)
	str("GROUPGATE_LOG_FORMAT", &c.LogFormat)
	dur("GROUPGATE_INTERVAL", &c.Interval)
	dur("GROUPGATE_RECONCILE_EVERY", &c.ReconcileEvery)
	str("GROUPGATE_SIMULATOR_LISTEN", &c.Simulator.Listen)
	if v := getenv("GROUPGATE_ALLOW_HTTP"); v != "" {
		c.AllowHTTP = v == "true" || v == "1"
	}
	return errors.Join(errs...)
}

// BindFlags registers flags that override c on fs. The caller parses fs.
func (c *Config) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Listen, "listen", c.Listen, "API listen address")
	fs.StringVar(&c.StorePath, "store", c.StorePath, "path of the bbolt store file")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "json or text")
}

// Validate reports every problem with c at once. It upper-cases tenant and
// project names in place.
func (c *Config) Validate() error {
	var p []string
	add := func(format string, a ...any) { p = append(p, fmt.Sprintf(format, a...)) }
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		add("listen: %q is not host:port", c.Listen)
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		add("tls: cert_file and key_file go together")
	}
	if c.TLS.CertFile == "" && !c.AllowHTTP {
		add("tls: no certificate configured: set tls.cert_file and tls.key_file, or allow_http: true to serve plain HTTP (behind a TLS-terminating proxy)")
	}
	if c.MetricsListen != "" {
		if _, _, err := net.SplitHostPort(c.MetricsListen); err != nil {
			add("metrics_listen: %q is not host:port", c.MetricsListen)
		}
	}
	p = append(p, c.storeProblems()...)
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		add("log_level: %q is not debug, info, warn or error", c.LogLevel)
	}
	switch c.LogFormat {
	case "json", "text":
	default:
		add("log_format: %q is not json or text", c.LogFormat)
	}
	if c.Interval <= 0 {
		add("interval: must be positive")
	}
	if c.PaceGuard < 0 {
		add("pace_guard: must not be negative")
	}
	if c.GroupLimit <= 0 {
		add("group_limit: must be positive")
	}
	if c.Retry.MaxDuration <= 0 || c.Retry.MaxFailures < 0 || c.Retry.BaseDelay <= 0 || c.Retry.MaxDelay < c.Retry.BaseDelay {
		add("retry: max_duration and base_delay must be positive, max_failures not negative (0: no bound), and max_delay >= base_delay")
	}
	if c.MaxQueue <= 0 || c.MaxProjectQueue <= 0 {
		add("max_queue and max_project_queue must be positive")
	}
	if c.MaxWait < 0 || c.MaxWait > Duration(10*time.Minute) {
		add("max_wait must be between 0 and 10m")
	}
	if c.Simulator.Users < 0 || c.Simulator.Users > 100000 {
		add("simulator.users must be between 0 and 100000")
	}
	if c.ReconcileEvery != 0 && c.ReconcileEvery < Duration(time.Second) {
		add("reconcile_every must be 0 (on request only) or at least 1s")
	}
	if c.IdempotencyTTL < Duration(time.Minute) {
		add("idempotency_ttl must be at least 1m")
	}
	if c.ShutdownGrace < 0 || c.UpstreamTimeout <= 0 {
		add("shutdown_grace must not be negative and upstream_timeout must be positive")
	}
	if c.RateLimit.PerSecond <= 0 || c.RateLimit.Burst < 1 {
		add("rate_limit.per_second must be positive and rate_limit.burst at least 1")
	}
	renewal := techpass.RenewalPolicy{Share: c.Credentials.TokenRenewalShare, Min: time.Duration(c.Credentials.TokenRenewalMin)}
	if c.Credentials.TokenRenewalShare == 0 || renewal.Validate() != nil {
		add("credentials: token_renewal_share must be in (0, 1) and token_renewal_min must not be negative")
	}
	if c.Credentials.MaxAge <= 0 || c.Credentials.CheckInterval <= 0 {
		add("credentials: max_age and check_interval must be positive")
	}
	if c.AuditRetention < Duration(24*time.Hour) {
		add("audit_retention must be at least 24h")
	}
	if c.Console.IdleTimeout < Duration(time.Minute) || c.Console.MaxLifetime < c.Console.IdleTimeout {
		add("console: idle_timeout must be at least 1m and max_lifetime at least idle_timeout")
	}
	if c.KeyRotationAge < Duration(24*time.Hour) {
		add("key_rotation_age must be at least 24h")
	}
	for i := range c.Tenants {
		t := &c.Tenants[i]
		where := fmt.Sprintf("tenants[%d] (%s)", i, names.Upper(t.Name))
		if !names.ValidTenant(t.Name) {
			add("%s: name %s", where, names.TenantRule)
		}
		t.Name = names.Upper(t.Name)
		if t.GroupLimit < 0 || t.Interval < 0 || t.MaxQueue < 0 || t.MaxProjectQueue < 0 {
			add("%s: group_limit, interval, max_queue and max_project_queue must not be negative", where)
		}
		p = append(p, t.TechPass.problems(where)...)
		p = append(p, t.TechPass.routeProblems(where)...)
		for j := range t.Projects {
			pr := &t.Projects[j]
			pwhere := fmt.Sprintf("%s.projects[%d] (%s)", where, j, names.Upper(pr.Name))
			if !names.ValidProject(pr.Name) {
				add("%s: name %s", pwhere, names.ProjectRule)
			}
			pr.Name = names.Upper(pr.Name)
			for k, key := range pr.Keys {
				if key.ID == "" {
					add("%s.keys[%d]: id is required", pwhere, k)
				}
				if _, err := tenants.ParseHash(key.Hash); err != nil {
					add("%s.keys[%d]: hash must be sha256:<64 hex digits> (groupgate newkey prints one)", pwhere, k)
				}
			}
		}
	}
	if len(p) > 0 {
		return fmt.Errorf("invalid configuration:\n  - %s", strings.Join(p, "\n  - "))
	}
	return nil
}

// UsesSimulator reports whether the tenant has no upstream configured.
func (t TechPassConfig) UsesSimulator() bool { return t.APIURL == "" }

func (t TechPassConfig) problems(where string) []string {
	var p []string
	add := func(format string, a ...any) { p = append(p, where+".techpass: "+fmt.Sprintf(format, a...)) }
	for _, pair := range [][2]string{{t.WebhookSecretFile, t.WebhookSecretEnv}, {t.PreviousWebhookSecretFile, t.PreviousWebhookSecretEnv}} {
		if pair[0] != "" && pair[1] != "" {
			add("give a webhook secret by file or by variable, not both")
		}
		if pair[1] != "" && !names.ValidEnv(pair[1]) {
			add("%q is not an environment variable name", pair[1])
		}
	}
	if t.UsesSimulator() {
		return p
	}
	for name, v := range map[string]string{"api_url": t.APIURL, "login_url": t.LoginURL, "token_url": t.TokenURL} {
		if v == "" {
			continue
		}
		if u, err := url.Parse(v); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			add("%s: %q is not an http(s) URL", name, v)
		}
	}
	if t.TokenURL == "" && t.DirectoryID == "" {
		add("directory_id (or token_url) is required")
	}
	if t.ClientID == "" {
		add("client_id is required")
	}
	kinds := 0
	for _, set := range []bool{t.ClientSecretFile != "", t.ClientSecretEnv != "", t.ClientCertificateFile != "" || t.ClientKeyFile != ""} {
		if set {
			kinds++
		}
	}
	if kinds != 1 {
		add("exactly one of client_secret_file, client_secret_env and client_certificate_file (with client_key_file) is required")
	}
	if t.ClientKeyFile != "" && t.ClientCertificateFile == "" {
		add("client_key_file needs client_certificate_file")
	}
	switch t.ClientAssertionAlg {
	case "", techpass.AlgRS256, techpass.AlgPS256:
		if t.ClientAssertionAlg != "" && t.ClientCertificateFile == "" {
			add("client_assertion_alg applies to certificate credentials only")
		}
	default:
		add("client_assertion_alg: %q is not RS256 or PS256", t.ClientAssertionAlg)
	}
	if (t.APIKeyFile == "") == (t.APIKeyEnv == "") {
		add("exactly one of api_key_file and api_key_env is required")
	}
	for _, e := range []string{t.ClientSecretEnv, t.APIKeyEnv} {
		if e != "" && !names.ValidEnv(e) {
			add("%q is not an environment variable name", e)
		}
	}
	return p
}

// Tenant returns the configuration's entry for tenant name, if it has one.
func (c Config) Tenant(name string) (TenantConfig, bool) {
	for _, t := range c.Tenants {
		if t.Name == name {
			return t, true
		}
	}
	return TenantConfig{}, false
}

// SimulatorSecretsDir is where generated simulator credentials are
// written: simulator.secrets_dir, else "simulator" beside the bbolt store
// file. It is "" with store: postgres and no secrets_dir, for a private
// temporary directory (see SimulatorConfig.SecretsDir).
func (c Config) SimulatorSecretsDir() string {
	switch {
	case c.Simulator.SecretsDir != "":
		return c.Simulator.SecretsDir
	case c.Store == StorePostgres:
		return ""
	}
	return filepath.Join(filepath.Dir(c.StorePath), "simulator")
}
