package pgstore_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/groupgate/groupgate/internal/pgtest"
	"github.com/groupgate/groupgate/pgstore"
)

// adminConn connects to dsn directly, closed when t ends.
func adminConn(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(t.Context()) })
	return c
}

// TestOpenMigratesOnceWhenReplicasStartTogether: four replicas opening one
// empty database at once all succeed and the schema is applied once.
func TestOpenMigratesOnceWhenReplicasStartTogether(t *testing.T) {
	dsn := pgtest.DSN(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := pgstore.Open(t.Context(), pgstore.Config{DSN: dsn, MaxConns: 2})
			if err == nil {
				err = s.Ping(t.Context())
				s.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: %v", i, err)
		}
	}
	var n, max int
	if err := adminConn(t, dsn).QueryRow(t.Context(), "SELECT count(*), max(version) FROM groupgate_schema").Scan(&n, &max); err != nil {
		t.Fatal(err)
	}
	if n != pgstore.SchemaVersion() || max != pgstore.SchemaVersion() {
		t.Errorf("groupgate_schema holds %d versions up to %d, want each of 1..%d once", n, max, pgstore.SchemaVersion())
	}
}

// TestOpenRefusesNewerSchema: a database migrated by a newer build is
// refused with a clear error, and left as it is.
func TestOpenRefusesNewerSchema(t *testing.T) {
	dsn := pgtest.DSN(t)
	mustOpenDSN(t, dsn)
	newer := pgstore.SchemaVersion() + 1
	admin := adminConn(t, dsn)
	if _, err := admin.Exec(t.Context(), "INSERT INTO groupgate_schema (version, name) VALUES ($1, 'from_the_future.sql')", newer); err != nil {
		t.Fatal(err)
	}
	_, err := pgstore.Open(t.Context(), pgstore.Config{DSN: dsn})
	if !errors.Is(err, pgstore.ErrSchemaTooNew) {
		t.Fatalf("Open of a newer schema: %v, want ErrSchemaTooNew", err)
	}
	if want := fmt.Sprintf("version %d, this build knows up to %d", newer, pgstore.SchemaVersion()); !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
	var n int
	if err := admin.QueryRow(t.Context(), "SELECT count(*) FROM groupgate_schema").Scan(&n); err != nil || n != newer {
		t.Errorf("groupgate_schema has %d rows (%v), want %d untouched", n, err, newer)
	}
}

// TestOpenRefusesSynchronousCommitOff: a database whose sessions would
// acknowledge commits before they are durable is refused.
func TestOpenRefusesSynchronousCommitOff(t *testing.T) {
	dsn := pgtest.DSN(t)
	admin := adminConn(t, dsn)
	var db string
	if err := admin.QueryRow(t.Context(), "SELECT current_database()").Scan(&db); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(t.Context(), "ALTER DATABASE "+db+" SET synchronous_commit = off"); err != nil {
		t.Fatal(err)
	}
	_, err := pgstore.Open(t.Context(), pgstore.Config{DSN: dsn})
	if !errors.Is(err, pgstore.ErrSynchronousCommit) {
		t.Fatalf("Open with synchronous_commit off: %v, want ErrSynchronousCommit", err)
	}
	if !strings.Contains(err.Error(), `"off"`) {
		t.Errorf("error %q does not say what the setting is", err)
	}
	// Set back on, the same database opens.
	if _, err := admin.Exec(t.Context(), "ALTER DATABASE "+db+" SET synchronous_commit = on"); err != nil {
		t.Fatal(err)
	}
	mustOpenDSN(t, dsn)
}

// TestConfigValidate: a DSN holding a password, in any form, is refused
// without repeating it; DSNs without one pass.
func TestConfigValidate(t *testing.T) {
	const secret = "hunter2-not-here"
	for _, dsn := range []string{
		"postgres://gate:" + secret + "@db.example:5432/groupgate",
		"postgresql://gate:" + secret + "@db.example/groupgate?sslmode=require",
		"postgres://gate@db.example/groupgate?password=" + secret,
		"host=db.example user=gate password=" + secret + " dbname=groupgate",
		"host=db.example user=gate dbname=groupgate password = '" + secret + "'",
		"password=" + secret,
	} {
		err := pgstore.Config{DSN: dsn}.Validate()
		if !errors.Is(err, pgstore.ErrPasswordInDSN) {
			t.Errorf("DSN with a password: %v, want ErrPasswordInDSN", err)
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("the error repeats the password: %v", err)
		}
	}
	for _, dsn := range []string{
		"postgres://gate@db.example:5432/groupgate?sslmode=verify-full",
		"host=/run/postgresql dbname=groupgate",
		"host=db.example user=gate dbname=groupgate passfile=/etc/pgpass",
	} {
		if err := (pgstore.Config{DSN: dsn, MaxConns: 8}).Validate(); err != nil {
			t.Errorf("Validate(%q): %v", dsn, err)
		}
	}
	for _, c := range []pgstore.Config{{}, {DSN: " "}, {DSN: "postgres://gate@db/x", MaxConns: -1}, {DSN: "postgres://gate@db:port/x"}} {
		if err := c.Validate(); err == nil {
			t.Errorf("Validate(%+v) accepted it", c)
		}
	}
}

// TestOpenErrorsNeverShowThePassword: a connection that fails says why,
// without the password.
func TestOpenErrorsNeverShowThePassword(t *testing.T) {
	const secret = "s3cret-password-value"
	_, err := pgstore.Open(t.Context(), pgstore.Config{DSN: "postgres://gate@127.0.0.1:1/groupgate?connect_timeout=2", Password: secret})
	if err == nil {
		t.Fatal("Open of a closed port succeeded")
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("the error shows the password: %v", err)
	}
}

// TestOpenWithPassword: a role that must authenticate by password connects
// with Config.Password, and not without it or with a wrong one; no error
// shows a password.
func TestOpenWithPassword(t *testing.T) {
	dsn, password := pgtest.PasswordDSN(t)
	if strings.Contains(dsn, password) {
		t.Fatal("pgtest put the password in the DSN")
	}
	for _, wrong := range []string{"", "not-" + password} {
		_, err := pgstore.Open(t.Context(), pgstore.Config{DSN: dsn, Password: wrong})
		if err == nil {
			t.Fatalf("Open with password %q succeeded", wrong)
		}
		if strings.Contains(err.Error(), password) || (wrong != "" && strings.Contains(err.Error(), wrong)) {
			t.Errorf("the error shows a password: %v", err)
		}
	}
	s, err := pgstore.Open(t.Context(), pgstore.Config{DSN: dsn, Password: password})
	if err != nil {
		t.Fatalf("Open with the password: %v", err)
	}
	defer s.Close()
	if _, err := s.Generation(t.Context()); err != nil {
		t.Errorf("Generation on the migrated database: %v", err)
	}
}
