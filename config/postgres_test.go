package config_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/groupgate/groupgate/config"
	"github.com/groupgate/groupgate/internal/testkit"
)

// TestPostgresConfigFromFile: the store kind and the postgres section read
// from YAML and the environment; bbolt stays the default.
func TestPostgresConfigFromFile(t *testing.T) {
	if c := config.DefaultConfig(); c.Store != config.StoreBbolt {
		t.Errorf("default store %q, want bbolt", c.Store)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "groupgate.yaml")
	testkit.WriteFile(t, file, `
allow_http: true
store: postgres
postgres:
  dsn: postgres://groupgate@db:5432/groupgate?sslmode=verify-full
  password_file: /run/secrets/pg-password
  max_conns: 12
`)
	c := config.DefaultConfig()
	if err := c.LoadFile(file); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	want := config.PostgresConfig{DSN: "postgres://groupgate@db:5432/groupgate?sslmode=verify-full", PasswordFile: "/run/secrets/pg-password", MaxConns: 12}
	if c.Store != config.StorePostgres || c.Postgres != want {
		t.Errorf("read store %q, postgres %+v; want postgres, %+v", c.Store, c.Postgres, want)
	}
	env := map[string]string{"GROUPGATE_STORE": "postgres", "GROUPGATE_POSTGRES_DSN": "host=/run/postgresql dbname=gg"}
	c = config.DefaultConfig()
	c.AllowHTTP = true
	if err := c.ApplyEnv(func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if c.Store != config.StorePostgres || c.Postgres.DSN != env["GROUPGATE_POSTGRES_DSN"] {
		t.Errorf("from the environment: store %q, dsn %q", c.Store, c.Postgres.DSN)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("trust or peer authentication (no password source) refused: %v", err)
	}
}

// TestPostgresConfigValidate: each bad store setting is reported, and no
// problem repeats a password written into the DSN by mistake.
func TestPostgresConfigValidate(t *testing.T) {
	const secret = "pa55-in-the-dsn"
	for _, tc := range []struct {
		name  string
		store string
		pg    config.PostgresConfig
		want  string
	}{
		{"unknown store", "mysql", config.PostgresConfig{}, `store: "mysql" is not bbolt or postgres`},
		{"no dsn", "postgres", config.PostgresConfig{}, "postgres.dsn: the PostgreSQL DSN is required"},
		{"password in url", "postgres", config.PostgresConfig{DSN: "postgres://gg:" + secret + "@db/gg"}, "postgres.dsn: the PostgreSQL DSN must not contain a password"},
		{"password keyword", "postgres", config.PostgresConfig{DSN: "host=db password=" + secret}, "must not contain a password"},
		{"both sources", "postgres", config.PostgresConfig{DSN: "postgres://gg@db/gg", PasswordFile: "/p", PasswordEnv: "PGPW"}, "password_file or by password_env, not both"},
		{"bad env name", "postgres", config.PostgresConfig{DSN: "postgres://gg@db/gg", PasswordEnv: "PG PW"}, `postgres.password_env: "PG PW" is not`},
		{"pool size", "postgres", config.PostgresConfig{DSN: "postgres://gg@db/gg", MaxConns: -1}, "postgres.max_conns: must be between 0"},
		{"postgres set on bbolt", "bbolt", config.PostgresConfig{DSN: "postgres://gg@db/gg"}, "postgres: set, but store is bbolt"},
	} {
		c := config.DefaultConfig()
		c.AllowHTTP = true
		c.Store, c.Postgres = tc.store, tc.pg
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a problem saying %q", tc.name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("%s: the problem repeats the password: %v", tc.name, err)
		}
	}
	c := config.DefaultConfig()
	c.AllowHTTP, c.StorePath = true, ""
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "store_path: must be set") {
		t.Errorf("bbolt without store_path: %v", err)
	}
	c.Store = config.StorePostgres
	c.Postgres.DSN = "postgres://gg@db/gg"
	if err := c.Validate(); err != nil {
		t.Errorf("postgres needs no store_path: %v", err)
	}
}

// TestPostgresPasswordSources: the password comes from its file or its
// variable; a missing one is an error naming the source, never a value.
func TestPostgresPasswordSources(t *testing.T) {
	const secret = "correct-horse-battery"
	file := filepath.Join(t.TempDir(), "pg-password")
	testkit.WriteFile(t, file, "  "+secret+"\n")
	env := map[string]string{"PG_PASSWORD": secret}
	getenv := func(k string) string { return env[k] }
	for _, pg := range []config.PostgresConfig{
		{DSN: "postgres://gg@db/gg", PasswordFile: file, MaxConns: 3},
		{DSN: "postgres://gg@db/gg", PasswordEnv: "PG_PASSWORD", MaxConns: 3},
	} {
		sc, err := pg.StoreConfig(getenv)
		if err != nil {
			t.Fatal(err)
		}
		if sc.Password != secret || sc.DSN != pg.DSN || sc.MaxConns != 3 {
			t.Errorf("%+v: got DSN %q, %d conns, password right: %v", pg, sc.DSN, sc.MaxConns, sc.Password == secret)
		}
	}
	if sc, err := (config.PostgresConfig{DSN: "host=/run/postgresql"}).StoreConfig(getenv); err != nil || sc.Password != "" {
		t.Errorf("no password source: %v, password set: %v", err, sc.Password != "")
	}
	for _, pg := range []config.PostgresConfig{
		{DSN: "postgres://gg@db/gg", PasswordFile: filepath.Join(t.TempDir(), "missing")},
		{DSN: "postgres://gg@db/gg", PasswordEnv: "UNSET_PG_PASSWORD"},
	} {
		_, err := pg.StoreConfig(getenv)
		if err == nil {
			t.Errorf("%+v: a missing password source accepted", pg)
			continue
		}
		if !strings.Contains(err.Error(), "missing") && !strings.Contains(err.Error(), "UNSET_PG_PASSWORD") {
			t.Errorf("the error does not name the source: %v", err)
		}
	}
}
