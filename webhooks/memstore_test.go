package webhooks_test

import (
	"testing"

	"github.com/groupgate/groupgate/internal/memstore"
	"github.com/groupgate/groupgate/webhooks/webhookstest"
)

// TestMemStore runs the webhooks.Store conformance suite against the
// in-memory store, which runs every transaction twice: the rules assume
// nothing of bbolt.
func TestMemStore(t *testing.T) {
	webhookstest.RunStoreTests(t, func(*testing.T) webhookstest.Store { return memstore.New() })
}
