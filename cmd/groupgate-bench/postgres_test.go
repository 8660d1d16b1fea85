package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/groupgate/groupgate/internal/pgtest"
)

// TestQuickRunPostgres runs the list phase on a throwaway PostgreSQL
// cluster with two replicas: the harness starts the cluster and both
// servers, the list phase measures, and a group deleted through one
// replica is gone from the next read on the other. Without PostgreSQL it
// skips, or fails under CI=true.
func TestQuickRunPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and two servers")
	}
	if !pgtest.Installed() {
		if os.Getenv("CI") == "true" {
			t.Fatal("PostgreSQL is not installed: run scripts/install-test-deps.sh")
		}
		t.Skip("PostgreSQL is not installed")
	}
	var stdout, stderr bytes.Buffer
	m := NewMain(&stdout, &stderr)
	args := []string{"-quick", "-json", "-store", "postgres", "-replicas", "2",
		"-rate=false", "-fairness=false", "-enqueue=false", "-list-duration", "400ms", "-list-groups", "3"}
	if err := m.ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := m.Run(ctx); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	var r Report
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("decode report: %v\n%s", err, stdout.String())
	}
	if r.Store != "postgres" || r.Replicas != 2 || r.List == nil {
		t.Fatalf("report of store %q, %d replicas, list %v; want postgres, 2, a list phase", r.Store, r.Replicas, r.List)
	}
	if r.List.CachedRPS <= 0 || r.List.CachedErrors != 0 {
		t.Errorf("list phase: %.0f/s cached, %d errors", r.List.CachedRPS, r.List.CachedErrors)
	}
	if r.List.AcrossReplicas == nil || !*r.List.AcrossReplicas {
		t.Errorf("a group deleted through replica 1 was still listed by replica 2 on its next read (%v)", r.List.AcrossReplicas)
	}
}
