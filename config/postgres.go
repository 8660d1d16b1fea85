package config

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/groupgate/groupgate/credentials"
	"github.com/groupgate/groupgate/names"
	"github.com/groupgate/groupgate/pgstore"
)

// The store kinds (Config.Store).
const (
	// StoreBbolt keeps everything in one bbolt file (store_path): one
	// process, the embedded default.
	StoreBbolt = "bbolt"
	// StorePostgres keeps everything in PostgreSQL (postgres), shared by
	// several replicas.
	StorePostgres = "postgres"
)

// PostgresConfig says how to reach the PostgreSQL store. The DSN holds no
// password: it comes from a file or an environment variable, like every
// other secret, or from neither for trust, peer or certificate
// authentication.
type PostgresConfig struct {
	// DSN is a libpq connection string without a password, e.g.
	// postgres://groupgate@db:5432/groupgate?sslmode=verify-full.
	DSN string `yaml:"dsn"`
	// PasswordFile holds the password (surrounding space trimmed).
	PasswordFile string `yaml:"password_file"`
	// PasswordEnv names the environment variable holding it.
	PasswordEnv string `yaml:"password_env"`
	// MaxConns bounds each replica's pool; 0 means 8.
	MaxConns int `yaml:"max_conns"`
	// LeaseTTL is the time to live of a tenant's dispatcher lease and of
	// a replica's heartbeat (pgstore.LeadingConfig.TTL); 0 means 15 s. A
	// dead leader's tenants wait about this long for another replica.
	LeaseTTL Duration `yaml:"lease_ttl"`
	// AuthCacheTTL bounds how long a change of keys, tenants or projects
	// made through another replica (a key revoked, a project disabled) may
	// take to apply on this one when its signal is lost: credentials are
	// checked against what this replica read of them, re-read when a
	// change is signalled and at least this often (pgstore.Config's
	// GenerationTTL). 0 means DefaultAuthCacheTTL; a negative value turns
	// the cache off (every request reads the keys' generation from the
	// database, and a revocation applies on every replica's next request).
	AuthCacheTTL Duration `yaml:"auth_cache_ttl"`
	// PollOnly skips LISTEN, for a connection pooler in transaction mode
	// (where notifications do not arrive): the replicas then learn of each
	// other's writes by polling every 2 s, and of changes of keys within
	// AuthCacheTTL.
	PollOnly bool `yaml:"poll_only"`
}

// DefaultAuthCacheTTL is postgres.auth_cache_ttl when unset.
const DefaultAuthCacheTTL = time.Second

// applyStoreEnv overlays GROUPGATE_STORE and GROUPGATE_POSTGRES_DSN.
func (c *Config) applyStoreEnv(getenv func(string) string) {
	if v := getenv("GROUPGATE_STORE"); v != "" {
		c.Store = v
	}
	if v := getenv("GROUPGATE_POSTGRES_DSN"); v != "" {
		c.Postgres.DSN = v
	}
}

// storeProblems checks the store settings. It never repeats the DSN: it
// could hold a password by mistake.
func (c *Config) storeProblems() []string {
	var p []string
	add := func(format string, a ...any) { p = append(p, fmt.Sprintf(format, a...)) }
	pg := c.Postgres
	switch c.Store {
	case StoreBbolt, "":
		if c.StorePath == "" {
			add("store_path: must be set")
		}
		if pg != (PostgresConfig{}) {
			add("postgres: set, but store is %s: set store: postgres to use it, or remove it", StoreBbolt)
		}
		return p
	case StorePostgres:
	default:
		add("store: %q is not %s or %s", c.Store, StoreBbolt, StorePostgres)
		return p
	}
	if err := (pgstore.Config{DSN: pg.DSN}).Validate(); err != nil {
		add("postgres.dsn: %v", err)
	}
	if pg.PasswordFile != "" && pg.PasswordEnv != "" {
		add("postgres: give the password by password_file or by password_env, not both")
	}
	if pg.PasswordEnv != "" && !names.ValidEnv(pg.PasswordEnv) {
		add("postgres.password_env: %q is not an environment variable name", pg.PasswordEnv)
	}
	if ttl := time.Duration(pg.LeaseTTL); ttl != 0 && (ttl < 100*time.Millisecond || ttl > 10*time.Minute) {
		add("postgres.lease_ttl: must be 0 (the default, 15s) or between 100ms and 10m, not %s", ttl)
	}
	if ttl := time.Duration(pg.AuthCacheTTL); ttl > 0 && (ttl < time.Millisecond || ttl > time.Minute) {
		add("postgres.auth_cache_ttl: must be 0 (the default, %s), negative (off) or between 1ms and 1m, not %s", DefaultAuthCacheTTL, ttl)
	}
	if pg.MaxConns < 0 || pg.MaxConns > 1000 {
		add("postgres.max_conns: must be between 0 (the default, %d) and 1000", pgstore.DefaultMaxConns)
	}
	return p
}

// StoreConfig returns the PostgreSQL store's settings with the password
// read from its file or environment variable (through getenv). Its errors
// name the file or variable, never the value.
func (c PostgresConfig) StoreConfig(getenv func(string) string) (pgstore.Config, error) {
	cfg := pgstore.Config{DSN: c.DSN, MaxConns: int32(c.MaxConns), GenerationTTL: time.Duration(c.AuthCacheTTL)}
	switch {
	case cfg.GenerationTTL == 0:
		cfg.GenerationTTL = DefaultAuthCacheTTL
	case cfg.GenerationTTL < 0:
		cfg.GenerationTTL = 0 // off: the database is read every time
	}
	switch {
	case c.PasswordFile != "":
		b, err := credentials.ReadFile(c.PasswordFile)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return pgstore.Config{}, fmt.Errorf("postgres.password_file: %s does not exist", c.PasswordFile)
			}
			return pgstore.Config{}, fmt.Errorf("postgres.password_file: %w", err)
		}
		cfg.Password = string(b)
	case c.PasswordEnv != "":
		v := getenv(c.PasswordEnv)
		if v == "" {
			return pgstore.Config{}, fmt.Errorf("postgres.password_env: %s is unset or empty", c.PasswordEnv)
		}
		cfg.Password = v
	}
	return cfg, nil
}
