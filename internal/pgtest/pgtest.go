// Package pgtest gives tests a throwaway PostgreSQL server: one cluster per
// test binary, started on first use, and a fresh database per test.
//
// A test binary that uses it stops the cluster at the end with Main:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		dsn := pgtest.DSN(t) // a new, empty database, dropped after the test
//		...
//	}
//
// The cluster is Debian's PostgreSQL (the newest of /usr/lib/postgresql/*/bin,
// else initdb and postgres from PATH), initialised in a temporary directory
// and listening on a free loopback port with trust authentication (but for
// PasswordDSN's roles, which must give their password), its unix socket in
// that directory. It runs with fsync off, for speed; everything
// else (synchronous_commit among it, which pgstore checks) keeps its default.
// As root it runs as the postgres OS user (PostgreSQL refuses root).
//
// The server dies with the test binary even when that is killed (a parent
// death signal); Main also removes its directory.
//
// Without PostgreSQL installed the tests that ask for a database are skipped,
// except under CI=true, where they fail: scripts/install-test-deps.sh
// installs it.
package pgtest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// errNotInstalled means no PostgreSQL server binaries were found.
var errNotInstalled = errors.New("PostgreSQL is not installed (no initdb and postgres in /usr/lib/postgresql/*/bin or on PATH): run scripts/install-test-deps.sh")

// cluster is the running server of this test binary.
type cluster struct {
	dir  string // the temporary directory: data, socket and log
	port int
	bin  string
	stop chan struct{} // closed to stop the server
	done chan error    // the server's exit

	mu   sync.Mutex
	conn *pgx.Conn // admin's connection
}

// passwordUsers is the role whose members authenticate by password.
const passwordUsers = "pgtest_password_users"

var (
	once     sync.Once
	running  *cluster
	startErr error
	dbSeq    atomic.Int64
)

// Main runs the tests of m and then stops the cluster, if one was started,
// and exits with the tests' code. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if running != nil {
		if err := running.shutdown(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: stopping PostgreSQL: %v\n", err)
		}
	}
	os.Exit(code)
}

// Shutdown stops the cluster, if one was started, and removes its
// directory: Main's end, for a TestMain that must run more after m.Run.
func Shutdown() {
	if running != nil {
		if err := running.shutdown(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: stopping PostgreSQL: %v\n", err)
		}
	}
}

// DSN creates a new, empty database for t, dropped when t ends, and returns
// its connection string (no password: the cluster trusts loopback). It
// starts the cluster on first use. Without PostgreSQL it skips t, or fails
// it under CI=true.
func DSN(t testing.TB) string {
	t.Helper()
	started(t)
	return running.dsn("postgres", newDatabase(t, ""))
}

// started starts the cluster on first use, or skips or fails t.
func started(t testing.TB) {
	t.Helper()
	once.Do(func() { running, startErr = start() })
	if errors.Is(startErr, errNotInstalled) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("pgtest: %v", startErr)
		}
		t.Skipf("pgtest: %v", startErr)
	}
	if startErr != nil {
		t.Fatalf("pgtest: starting PostgreSQL: %v", startErr)
	}
}

// PasswordDSN is DSN for a database owned by a new role that must give its
// password (SCRAM) to connect: it returns the DSN, which holds no
// password, and the password. The role is dropped with the database.
func PasswordDSN(t testing.TB) (dsn, password string) {
	t.Helper()
	started(t)
	role := fmt.Sprintf("pw%d_%d", os.Getpid(), dbSeq.Add(1))
	password = rand.Text()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The password is a base32 string: safe between quotes.
	if err := running.admin(ctx, "CREATE ROLE "+role+" LOGIN PASSWORD '"+password+"' IN ROLE "+passwordUsers); err != nil {
		t.Fatalf("pgtest: create role: %v", err)
	}
	name := newDatabase(t, role)
	return running.dsn(role, name), password
}

// newDatabase creates a database (owned by owner, if set), dropped with
// its owner when t ends.
func newDatabase(t testing.TB, owner string) string {
	t.Helper()
	name := fmt.Sprintf("t%d_%d", os.Getpid(), dbSeq.Add(1))
	sql := "CREATE DATABASE " + name + " TEMPLATE template0"
	if owner != "" {
		sql += " OWNER " + owner
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := running.admin(ctx, sql); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// FORCE ends the connections a failed test may have left open.
		if err := running.admin(ctx, "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
		if owner != "" {
			if err := running.admin(ctx, "DROP ROLE "+owner); err != nil {
				t.Errorf("pgtest: drop role %s: %v", owner, err)
			}
		}
	})
	return name
}

func (c *cluster) dsn(user, db string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", user, c.port, db)
}

// admin runs one statement on the postgres database, on one connection
// kept for them all (connecting for each costs more than the statement).
func (c *cluster) admin(ctx context.Context, sql string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil || c.conn.IsClosed() {
		conn, err := pgx.Connect(ctx, c.dsn("postgres", "postgres"))
		if err != nil {
			return err
		}
		c.conn = conn
	}
	_, err := c.conn.Exec(ctx, sql)
	return err
}

// binDir finds the directory holding initdb and postgres: the newest
// version under root (Debian's /usr/lib/postgresql), else PATH's.
func binDir(root string) (string, error) {
	dirs, _ := filepath.Glob(filepath.Join(root, "*", "bin"))
	slices.SortFunc(dirs, func(a, b string) int { return version(b) - version(a) }) // newest first
	for _, d := range dirs {
		if executable(filepath.Join(d, "initdb")) && executable(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		d := filepath.Dir(p)
		if executable(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", errNotInstalled
}

// version is the major version in a /usr/lib/postgresql/<n>/bin path.
func version(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

func executable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// start initialises and starts a cluster.
func start() (*cluster, error) {
	bin, err := binDir("/usr/lib/postgresql")
	if err != nil {
		return nil, err
	}
	// As root the server runs as postgres; its directory must be its own,
	// under a world-searchable parent.
	var cred *syscall.Credential
	parent := os.TempDir()
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root, PostgreSQL must run as the postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		parent = "/tmp"
	}
	dir, err := os.MkdirTemp(parent, "pgtest-")
	if err != nil {
		return nil, err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	c := &cluster{dir: dir, bin: bin}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	initdb.Dir = dir
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	// Members of passwordUsers (PasswordDSN's roles) must give a password;
	// the first matching line of pg_hba.conf wins.
	hba := filepath.Join(data, "pg_hba.conf")
	rules, err := os.ReadFile(hba)
	if err == nil {
		err = os.WriteFile(hba, append([]byte("host all +"+passwordUsers+" 127.0.0.1/32 scram-sha-256\n"), rules...), 0o600)
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pg_hba.conf: %w", err)
	}
	// A port found free may be taken before the server binds it: try again.
	for attempt := 0; ; attempt++ {
		err = c.run(data, cred)
		if err == nil {
			return c, nil
		}
		if attempt == 2 {
			os.RemoveAll(dir)
			return nil, err
		}
	}
}

// run starts the server on a free port and waits until it accepts
// connections.
func (c *cluster) run(data string, cred *syscall.Credential) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	c.port = port
	logPath := filepath.Join(c.dir, "postgres.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(filepath.Join(c.bin, "postgres"), "-D", data, "-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="+c.dir,
		"-c", "fsync=off", "-c", "full_page_writes=off", "-c", "max_connections=200",
		"-c", "shared_buffers=32MB")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Pdeathsig: the server dies with the test binary, even when it is
	// killed. The signal follows the thread that started the server, so
	// that thread is locked and kept until the server exits.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	c.stop, c.done = make(chan struct{}), make(chan error, 1)
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case <-c.stop:
			_ = cmd.Process.Signal(syscall.SIGINT) // fast shutdown
			c.done <- <-exited
		case err := <-exited:
			c.done <- fmt.Errorf("postgres exited: %v", err)
		}
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := pgx.Connect(ctx, c.dsn("postgres", "postgres"))
		if err == nil {
			_, err = conn.Exec(ctx, "CREATE ROLE "+passwordUsers+" NOLOGIN")
			conn.Close(context.Background())
			cancel()
			return err
		}
		cancel()
		select {
		case exitErr := <-c.done:
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("%v\n%s", exitErr, log)
		default:
		}
		if time.Now().After(deadline) {
			_ = c.halt()
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("postgres did not accept connections within 30s: %v\n%s", err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// shutdown stops the server and removes its directory.
func (c *cluster) shutdown() error {
	c.mu.Lock()
	if c.conn != nil {
		c.conn.Close(context.Background())
	}
	c.mu.Unlock()
	err := c.halt()
	if rmErr := os.RemoveAll(c.dir); err == nil {
		err = rmErr
	}
	return err
}

// halt stops the server and waits for it to exit.
func (c *cluster) halt() error {
	close(c.stop)
	select {
	case err := <-c.done:
		return err
	case <-time.After(30 * time.Second):
		return errors.New("postgres did not stop within 30s")
	}
}

// freePort returns a loopback TCP port nothing listens on now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
