package groups_test

import (
	"testing"

	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/groups/groupstest"
	"github.com/groupgate/groupgate/internal/memstore"
	"github.com/groupgate/groupgate/queue"
	"github.com/groupgate/groupgate/queue/queuetest"
)

// The conformance suites run here against the in-memory store as they run
// against bbolt in package boltstore: the store contract assumes nothing of
// bbolt (memstore runs every transaction twice and keeps only the second).

func memStore(*testing.T) groups.Store { return memstore.New() }

func memLedger(*testing.T) queue.Store[groups.Effect] { return groups.NewLedger(memstore.New()) }

func TestGroupsStoreInMemory(t *testing.T) { groupstest.RunStoreTests(t, memStore) }

func TestGroupsStoreInMemoryConcurrency(t *testing.T) {
	groupstest.RunConcurrencyTests(t, memStore)
}

func TestQueueStoreInMemory(t *testing.T) {
	queuetest.RunStoreTests(t, memLedger, groupstest.FailingEffect)
}

func TestQueueStoreInMemoryConcurrency(t *testing.T) {
	queuetest.RunConcurrencyTests(t, memLedger, groupstest.FailingEffect)
}
