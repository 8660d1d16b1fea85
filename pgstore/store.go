package pgstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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
	// GenerationTTL, if positive, lets Generation answer from memory for
	// up to this long after it last read the database (see
	// generationCache): a change of tenants, projects or keys made through
	// another replica is then seen here at most this long after it
	// commits, and at once when its signal arrives (FollowTenants). 0 reads
	// the database on every call.
	GenerationTTL time.Duration
	// Now is the clock of GenerationTTL; nil means time.Now.
	Now func() time.Time
	// Logger, if set, is told of signals that could not be sent.
	Logger *slog.Logger
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
	// audits makes a group commit of concurrent audit appends.
	audits auditBatcher
	// generation caches the tenants generation (Config.GenerationTTL).
	generation generationCache
	// wakes signals committed enqueues to the other replicas.
	wakes wakes
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
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{pool: pool, generation: generationCache{ttl: cfg.GenerationTTL, now: now}}
	s.wakes = wakes{send: s.notifyQueue, log: log}
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
func (s *Store) Close() {
	s.wakes.close()
	s.pool.Close()
}

// ErrAmbiguousCommit means a write's COMMIT was sent but no clear answer
// came back (the connection failed or was terminated, or ctx ended, while
// it was under way): the write may or may not be stored. The HTTP edge answers 503 with
// Retry-After; a retry settles it (with the same Idempotency-Key where
// the write is idempotent by one).
var ErrAmbiguousCommit = errors.New("the commit's outcome is unknown: the write may or may not be stored")

// inTx runs fn in a read-committed transaction and commits it, or rolls it
// back when fn fails. A commit without a clear answer is
// ErrAmbiguousCommit (see refused).
func (s *Store) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) // nothing to do after a commit
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		if refused(err) {
			return fmt.Errorf("commit: %w", err)
		}
		return fmt.Errorf("%w: %w", ErrAmbiguousCommit, err)
	}
	return nil
}

// refused reports whether a COMMIT's error means the transaction is not
// stored: the server answered with an ERROR (the transaction was aborted),
// or with a rollback. Anything else is ambiguous: no answer (the
// connection failed, ctx ended), or a FATAL one, which the server may send
// after the commit is on disk (a wait for a synchronous standby cut short
// by a termination: "the transaction has already committed locally").
func refused(err error) bool {
	if errors.Is(err, pgx.ErrTxCommitRollback) {
		return true
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	sev := pgErr.SeverityUnlocalized
	if sev == "" {
		sev = pgErr.Severity
	}
	return sev == "ERROR"
}
