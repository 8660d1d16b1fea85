package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/groupgate/groupgate/boltstore"
	"github.com/groupgate/groupgate/config"
	"github.com/groupgate/groupgate/names"
	"github.com/groupgate/groupgate/pgstore"
	"github.com/groupgate/groupgate/storecopy"
)

const copyStoreUsage = `Usage: groupgate copy-store --from STORE --to STORE [--password-file FILE | --password-env VAR]

Copies every record of a store (tenants, projects, key hashes, sealed
credentials, the group mirror, queued operations, idempotency keys, webhook
records, the audit log) into an empty store, then checks that the target
holds as many records of every kind as the source. Stop the service first:
a bbolt file it holds, or a database where its replicas beat, is refused.

A STORE is a bbolt file's path (bbolt:PATH also works) or a PostgreSQL DSN
without a password: postgres://user@host/db?sslmode=... (or postgres: and a
keyword/value DSN). The password of a PostgreSQL store comes from
--password-file or the environment variable --password-env names, never
from the command line. An empty PostgreSQL database is migrated first.

Flags:`

// runCopyStore is groupgate copy-store: 0 when copied and verified, 1 when
// the copy failed or was refused (nothing written), 2 for bad usage.
func runCopyStore(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("groupgate copy-store", flag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.Usage = func() { fmt.Fprintln(stdout, copyStoreUsage); fs.PrintDefaults() }
	from := fs.String("from", "", "the store to copy from")
	to := fs.String("to", "", "the empty store to copy into")
	pwFile := fs.String("password-file", "", "file holding the PostgreSQL password")
	pwEnv := fs.String("password-env", "", "environment variable holding the PostgreSQL password")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "groupgate copy-store: "+format+"\n", a...)
		return code
	}
	switch {
	case fs.NArg() > 0:
		return fail(2, "unexpected argument %q (see --help)", fs.Arg(0))
	case *from == "" || *to == "":
		return fail(2, "--from and --to are required (see --help)")
	case *pwFile != "" && *pwEnv != "":
		return fail(2, "give the password by --password-file or by --password-env, not both")
	case *pwEnv != "" && !names.ValidEnv(*pwEnv):
		return fail(2, "--password-env: %q is not an environment variable name", *pwEnv)
	}
	src, err := parseStoreSpec(*from)
	if err != nil {
		return fail(2, "--from: %v", err)
	}
	dst, err := parseStoreSpec(*to)
	if err != nil {
		return fail(2, "--to: %v", err)
	}
	if src.path != "" && src.path == dst.path {
		return fail(2, "--from and --to are the same file")
	}
	if src.path != "" {
		if _, err := os.Stat(src.path); err != nil {
			return fail(1, "--from: %v", err)
		}
	}
	pw := config.PostgresConfig{PasswordFile: *pwFile, PasswordEnv: *pwEnv}

	source, closeSource, err := openStore(ctx, src, pw, getenv)
	if err != nil {
		return fail(1, "open the source: %v", err)
	}
	defer closeSource()
	created := false
	if dst.path != "" {
		_, err := os.Stat(dst.path)
		created = errors.Is(err, os.ErrNotExist)
	}
	target, closeTarget, err := openStore(ctx, dst, pw, getenv)
	if err != nil {
		return fail(1, "open the target: %v", err)
	}
	counts, err := storecopy.Copy(ctx, source, target)
	closeTarget()
	if err != nil {
		if created {
			// The file was made for this copy: leave nothing half written.
			_ = os.Remove(dst.path)
		}
		if errors.Is(err, storecopy.ErrNotEmpty) {
			return fail(1, "%v: it already holds records; nothing was written (copy into a new file or an empty database)", err)
		}
		return fail(1, "%v", err)
	}
	fmt.Fprintf(stdout, "copied %s to %s; the target holds as many records of every kind as the source:\n", src, dst)
	for _, c := range counts {
		fmt.Fprintf(stdout, "  %-20s %8d\n", c.Kind, c.N)
	}
	return 0
}

// storeSpec is a parsed --from or --to: a bbolt file or a PostgreSQL DSN.
type storeSpec struct {
	path, dsn string
}

func (s storeSpec) String() string {
	if s.path != "" {
		return "bbolt file " + s.path
	}
	return "PostgreSQL" // the DSN is not repeated: it could hold a password by mistake
}

func parseStoreSpec(s string) (storeSpec, error) {
	switch {
	case strings.HasPrefix(s, "postgres://"), strings.HasPrefix(s, "postgresql://"):
		return storeSpec{dsn: s}, nil
	case strings.HasPrefix(s, "postgres:"):
		return storeSpec{dsn: strings.TrimPrefix(s, "postgres:")}, nil
	case strings.HasPrefix(s, "bbolt:"):
		s = strings.TrimPrefix(s, "bbolt:")
	}
	if s == "" {
		return storeSpec{}, errors.New("empty bbolt path")
	}
	return storeSpec{path: s}, nil
}

// openStore opens a store of the spec; the password of a PostgreSQL one
// comes from pw's file or variable.
func openStore(ctx context.Context, s storeSpec, pw config.PostgresConfig, getenv func(string) string) (storecopy.Store, func(), error) {
	if s.path != "" {
		st, err := boltstore.Open(s.path, time.Second)
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, nil, fmt.Errorf("%s is locked by another process: is the service running on it? Stop it first", s.path)
		}
		if err != nil {
			return nil, nil, err
		}
		return st, func() { _ = st.Close() }, nil
	}
	pw.DSN = s.dsn
	cfg, err := pw.StoreConfig(getenv)
	if err != nil {
		return nil, nil, err
	}
	cfg.MaxConns = 2
	st, err := pgstore.Open(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	// Replicas of the service announce themselves by heartbeat: a copy
	// made while they run would miss what they write next.
	alive, err := st.Replicas(ctx)
	if err == nil && len(alive) > 0 {
		err = fmt.Errorf("the service is running on this database (replicas %s): stop it first", strings.Join(alive, ", "))
	}
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return st, st.Close, nil
}
