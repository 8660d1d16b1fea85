package boltstore_test

import (
	"errors"
	"testing"

	"github.com/groupgate/groupgate/boltstore"
	"github.com/groupgate/groupgate/tenants"
	"github.com/groupgate/groupgate/tenants/tenantstest"
)

func TestTenantsStore(t *testing.T) {
	tenantstest.RunStoreTests(t, func(t *testing.T) tenants.Store { return suiteStore(t) })
}

func TestTenantsStoreConcurrency(t *testing.T) {
	tenantstest.RunConcurrencyTests(t, func(t *testing.T) tenants.Store { return suiteStore(t) })
}

// TestGenerationAfterClose: a closed store cannot say its data is current.
func TestGenerationAfterClose(t *testing.T) {
	s := suiteStore(t)
	if _, err := s.Generation(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if g, err := s.Generation(t.Context()); !errors.Is(err, boltstore.ErrClosed) {
		t.Fatalf("Generation after Close = %d, %v; want ErrClosed", g, err)
	}
}
