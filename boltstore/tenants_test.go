package boltstore_test

import (
	"testing"

	"github.com/groupgate/groupgate/tenants"
	"github.com/groupgate/groupgate/tenants/tenantstest"
)

func TestTenantsStore(t *testing.T) {
	tenantstest.RunStoreTests(t, func(t *testing.T) tenants.Store { return suiteStore(t) })
}

func TestTenantsStoreConcurrency(t *testing.T) {
	tenantstest.RunConcurrencyTests(t, func(t *testing.T) tenants.Store { return suiteStore(t) })
}
