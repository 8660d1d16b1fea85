package pgstore

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Config says how to reach the database.
type Config struct {
	// DSN is a libpq connection string, URL (postgres://user@host/db) or
	// keyword/value (host=... dbname=...) form, without a password.
	DSN string
	// Password, if set, is the role's password, read by the caller from a
	// file or an environment variable. Empty for trust, peer or
	// certificate authentication (or PGPASSWORD/.pgpass, as libpq reads
	// them).
	Password string
	// MaxConns bounds the pool; 0 means DefaultMaxConns.
	MaxConns int32
}

// DefaultMaxConns is the pool size when Config.MaxConns is 0.
const DefaultMaxConns = 8

// Errors of Open, wrapped with detail.
var (
	// ErrPasswordInDSN: the DSN holds a password; pass it as Config.Password.
	ErrPasswordInDSN = errors.New("the PostgreSQL DSN must not contain a password (give it from a file or the environment)")
	// ErrSynchronousCommit: the server would acknowledge commits before
	// they are durable.
	ErrSynchronousCommit = errors.New("PostgreSQL synchronous_commit must be on")
	// ErrSchemaTooNew: the database was migrated by a newer build.
	ErrSchemaTooNew = errors.New("the database schema is newer than this build knows")
)

// kvPassword finds a password keyword in a keyword/value DSN.
var kvPassword = regexp.MustCompile(`(^|\s)password\s*=`)

// Validate checks the configuration without connecting: a DSN is given,
// it parses, and it holds no password. Its errors never repeat the DSN.
func (c Config) Validate() error {
	if strings.TrimSpace(c.DSN) == "" {
		return errors.New("the PostgreSQL DSN is required")
	}
	if c.MaxConns < 0 {
		return fmt.Errorf("the PostgreSQL pool size must not be negative (got %d)", c.MaxConns)
	}
	if strings.HasPrefix(c.DSN, "postgres://") || strings.HasPrefix(c.DSN, "postgresql://") {
		u, err := url.Parse(c.DSN)
		if err != nil {
			return errors.New("the PostgreSQL DSN is not a valid URL")
		}
		if _, set := u.User.Password(); set || u.Query().Has("password") {
			return ErrPasswordInDSN
		}
	} else if kvPassword.MatchString(c.DSN) {
		return ErrPasswordInDSN
	}
	if _, err := pgxpool.ParseConfig(c.DSN); err != nil {
		return errors.New("the PostgreSQL DSN does not parse (see libpq's connection strings)")
	}
	return nil
}

// Store is the PostgreSQL store. It is safe for concurrent use; Close it
// when done.
type Store struct {
	pool *pgxpool.Pool
}

// Open connects to the database, checks that synchronous_commit is on,
// and brings the schema up to this build's version (refusing a newer one).
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pc, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, errors.New("the PostgreSQL DSN does not parse")
	}
	if cfg.Password != "" {
		pc.ConnConfig.Password = cfg.Password
	}
	pc.MaxConns = cfg.MaxConns
	if pc.MaxConns == 0 {
		pc.MaxConns = DefaultMaxConns
	}
	// Every connection is checked: a role or database setting could turn
	// synchronous_commit off for some sessions only.
	pc.AfterConnect = func(ctx context.Context, c *pgx.Conn) error { return checkSynchronousCommit(ctx, c) }
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	s := &Store{pool: pool}
	if err := s.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// checkSynchronousCommit refuses a session whose commits could return
// before they are durable.
func checkSynchronousCommit(ctx context.Context, c *pgx.Conn) error {
	var v string
	if err := c.QueryRow(ctx, "SHOW synchronous_commit").Scan(&v); err != nil {
		return fmt.Errorf("read synchronous_commit: %w", err)
	}
	switch v {
	case "on", "remote_apply":
		return nil
	}
	return fmt.Errorf("%w (it is %q): a commit could be lost after the gateway has answered; set it on for the gateway's role or database", ErrSynchronousCommit, v)
}

// Ping checks that the database answers (for /readyz).
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("PostgreSQL: %w", err)
	}
	return nil
}

// Close closes the pool, waiting for connections in use to be returned.
func (s *Store) Close() { s.pool.Close() }

// inTx runs fn in a read-committed transaction and commits it, or rolls it
// back when fn fails.
func (s *Store) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, fn)
}
