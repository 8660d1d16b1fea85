package pgtest

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
)

// Server is a throwaway PostgreSQL server for a program rather than a
// test (groupgate-bench -store postgres): the same cluster as the tests',
// started by StartServer and removed by Stop.
type Server struct {
	c   *cluster
	seq atomic.Int64
}

// StartServer initialises and starts a cluster in a temporary directory,
// on a free loopback port, with fsync off. Stop it with Stop.
func StartServer() (*Server, error) {
	c, err := start()
	if err != nil {
		return nil, err
	}
	return &Server{c: c}, nil
}

// NewDatabase creates an empty database and returns its connection string
// (no password: the cluster trusts loopback). Stop drops it with the rest.
func (s *Server) NewDatabase(ctx context.Context) (string, error) {
	name := fmt.Sprintf("bench%d_%d", os.Getpid(), s.seq.Add(1))
	if err := s.c.admin(ctx, "CREATE DATABASE "+name+" TEMPLATE template0"); err != nil {
		return "", fmt.Errorf("pgtest: create database: %w", err)
	}
	return s.c.dsn("postgres", name), nil
}

// Stop stops the server and removes its directory.
func (s *Server) Stop() error { return s.c.shutdown() }

// Installed reports whether PostgreSQL's server binaries were found, so a
// program's test can skip (or fail under CI=true) as DSN does.
func Installed() bool {
	_, err := binDir("/usr/lib/postgresql")
	return err == nil
}
