package main

import (
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
	r, _ := quickRun(t, 2*time.Minute, "-quick", "-json", "-store", "postgres", "-replicas", "2",
		"-rate=false", "-fairness=false", "-enqueue=false", "-list-duration", "400ms", "-list-groups", "3")
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
