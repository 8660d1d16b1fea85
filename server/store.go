package server

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/groupgate/groupgate/api"
	"github.com/groupgate/groupgate/audit"
	"github.com/groupgate/groupgate/boltstore"
	"github.com/groupgate/groupgate/config"
	"github.com/groupgate/groupgate/console"
	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/pgstore"
	"github.com/groupgate/groupgate/tenants"
	"github.com/groupgate/groupgate/webhooks"
)

// store is what the server needs of its backend, bbolt or PostgreSQL
// (config.Store): every domain package's Store interface, the webhook
// notices, a ping for /readyz, and Close. openStore opens it.
type store interface {
	tenants.Store
	groups.Store
	webhooks.Store
	audit.Store
	noticeStore
	Ping(ctx context.Context) error
}

// backend is the opened store and what only one kind of backend offers.
type backend struct {
	store
	// close releases the store.
	close func() error
	// backups writes hot backups; nil on PostgreSQL (pg_dump's job): the
	// backup endpoint then answers api.ErrBackupsNotServed.
	backups api.Backup
	// pending lists a project's queued operations for the console; nil
	// hides the console's queue list.
	pending console.Pending
	// pg is the PostgreSQL store (nil on bbolt): its listener carries the
	// signals between replicas (signals.go).
	pg *pgstore.Store
}

// Both backends hold every store the server needs.
var (
	_ store = (*boltstore.Store)(nil)
	_ store = (*pgstore.Store)(nil)
)

// openStore opens the store cfg names: the bbolt file at store_path, or
// PostgreSQL with the password read from its file or variable (never
// logged, never in an error).
func openStore(ctx context.Context, cfg config.Config, getenv func(string) string, logger *slog.Logger) (*backend, error) {
	if cfg.Store != config.StorePostgres {
		b, err := boltstore.Open(cfg.StorePath, 5*time.Second)
		if err != nil {
			return nil, err
		}
		return &backend{store: b, close: b.Close, backups: b, pending: b}, nil
	}
	pc, err := cfg.Postgres.StoreConfig(getenv)
	if err != nil {
		return nil, err
	}
	pc.Logger = logger
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	pg, err := pgstore.Open(octx, pc)
	if err != nil {
		return nil, fmt.Errorf("store: postgres: %w", err)
	}
	return &backend{store: pg, close: func() error { pg.Close(); return nil }, pg: pg}, nil
}
