package pgstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/groupgate/groupgate/internal/pgtest"
	"github.com/groupgate/groupgate/internal/testkit"
	"github.com/groupgate/groupgate/pgstore"
	"github.com/groupgate/groupgate/tenants"
)

// deferAtCommit makes every later insert of a tenant run body (PL/pgSQL)
// at COMMIT, through a deferred constraint trigger.
func deferAtCommit(t *testing.T, dsn, body string) {
	t.Helper()
	admin := adminConn(t, dsn)
	for _, sql := range []string{
		"CREATE FUNCTION at_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN " + body + "; RETURN NULL; END $$",
		"CREATE CONSTRAINT TRIGGER at_commit AFTER INSERT ON tenants DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION at_commit()",
	} {
		if _, err := admin.Exec(t.Context(), sql); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCommitWithoutAnswerIsAmbiguous: when the connection is terminated
// (a FATAL answer) or the caller gives up (no answer) while the COMMIT is
// under way, the write's error is ErrAmbiguousCommit: the store cannot
// know. Here the commit did not happen, and a retry succeeds.
func TestCommitWithoutAnswerIsAmbiguous(t *testing.T) {
	for _, how := range []string{"terminated", "given up"} {
		t.Run(how, func(t *testing.T) {
			dsn := pgtest.DSN(t)
			s := mustOpenDSN(t, dsn)
			deferAtCommit(t, dsn, "PERFORM pg_sleep(30)")
			gen, err := s.Generation(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			done := make(chan error, 1)
			go func() {
				done <- s.CreateTenant(ctx, tenants.Tenant{Name: "SHIP", GroupLimit: 50, Interval: time.Second})
			}()
			admin := adminConn(t, dsn)
			// terminate ends the sleeping COMMIT's backend, if there is one.
			terminate := func() bool {
				var n int
				err := admin.QueryRow(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
					WHERE datname = current_database() AND wait_event = 'PgSleep' AND lower(query) = 'commit'`).Scan(&n)
				if err != nil {
					t.Fatal(err)
				}
				return n == 1
			}
			if how == "terminated" {
				testkit.Eventually(t, 10*time.Second, "the COMMIT to be under way", terminate)
			} else {
				testkit.Eventually(t, 10*time.Second, "the COMMIT to be under way", func() bool {
					var n int
					if err := admin.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity
						WHERE datname = current_database() AND wait_event = 'PgSleep' AND lower(query) = 'commit'`).Scan(&n); err != nil {
						t.Fatal(err)
					}
					return n == 1
				})
				cancel()
			}
			err = <-done
			if !errors.Is(err, pgstore.ErrAmbiguousCommit) {
				t.Fatalf("CreateTenant whose COMMIT got no clear answer: %v, want ErrAmbiguousCommit", err)
			}
			if how == "given up" {
				testkit.Eventually(t, 10*time.Second, "the abandoned COMMIT's backend to be ended", terminate)
			}
			if _, err := admin.Exec(t.Context(), "DROP TRIGGER at_commit ON tenants"); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Tenant(t.Context(), "SHIP"); !errors.Is(err, tenants.ErrNotFound) {
				t.Errorf("after the cut commit: %v, want nothing stored", err)
			}
			if g, err := s.Generation(t.Context()); err != nil || g != gen {
				t.Errorf("generation %d (%v) after the cut commit, want %d", g, err, gen)
			}
			if err := s.CreateTenant(t.Context(), tenants.Tenant{Name: "SHIP", GroupLimit: 50, Interval: time.Second}); err != nil {
				t.Errorf("retry: %v", err)
			}
		})
	}
}

// TestCommitRefusedIsNotAmbiguous: a COMMIT the server refuses stored
// nothing, and says so: not ErrAmbiguousCommit.
func TestCommitRefusedIsNotAmbiguous(t *testing.T) {
	dsn := pgtest.DSN(t)
	s := mustOpenDSN(t, dsn)
	deferAtCommit(t, dsn, "RAISE EXCEPTION 'refused at commit'")
	gen, err := s.Generation(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	err = s.CreateTenant(t.Context(), tenants.Tenant{Name: "SHIP", GroupLimit: 50, Interval: time.Second})
	if err == nil || errors.Is(err, pgstore.ErrAmbiguousCommit) {
		t.Fatalf("CreateTenant refused at COMMIT: %v, want a plain error", err)
	}
	if _, err := s.Tenant(t.Context(), "SHIP"); !errors.Is(err, tenants.ErrNotFound) {
		t.Errorf("after the refused commit: %v, want nothing stored", err)
	}
	if g, err := s.Generation(t.Context()); err != nil || g != gen {
		t.Errorf("generation %d (%v) after the refused commit, want %d", g, err, gen)
	}
}
