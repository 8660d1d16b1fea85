package pgtest_test

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/groupgate/groupgate/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestDatabasesAreFreshAndSeparate: each test gets its own empty database
// on a server with fsync off and synchronous_commit on.
func TestDatabasesAreFreshAndSeparate(t *testing.T) {
	ctx := t.Context()
	a, b := pgtest.DSN(t), pgtest.DSN(t)
	if a == b {
		t.Fatalf("two databases share one DSN %s", a)
	}
	ca, err := pgx.Connect(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close(ctx)
	cb, err := pgx.Connect(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close(ctx)
	if _, err := ca.Exec(ctx, "CREATE TABLE only_in_a (x int)"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := cb.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("a table created in one database shows in the other")
	}
	for setting, want := range map[string]string{"fsync": "off", "synchronous_commit": "on", "listen_addresses": "127.0.0.1"} {
		var got string
		if err := ca.QueryRow(ctx, "SHOW "+setting).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s = %q, want %q", setting, got, want)
		}
	}
}
