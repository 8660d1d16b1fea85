package main

import (
	"strings"
	"testing"
)

const before = `package server

import (
	"fmt"

	"github.com/groupgate/groupgate/throttle"
)

// newQueue builds the throttle.Queue; see throttle/gate.go.
func newQueue(store throttle.Store[int]) *throttle.Queue[int] {
	q := throttle.NewQueue[int](store, nil, nil)
	q.Put(throttle.DispatcherConfig[int]{Gate: throttle.NewGate(0, nil), Retry: throttle.RetryPolicy{}})
	var tx throttle.QueueTx
	fmt.Println(tx, throttle.Done, throttle.ErrQueueFull)
	return q
}
`

const after = `package server

import (
	"fmt"

	"github.com/groupgate/groupgate/dispatch"
	"github.com/groupgate/groupgate/pacing"
	"github.com/groupgate/groupgate/queue"
)

// newQueue builds the dispatch.Dispatchers; see pacing/gate.go.
func newQueue(store queue.Store[int]) *dispatch.Dispatchers[int] {
	q := dispatch.NewDispatchers[int](store, nil, nil)
	q.Put(dispatch.Config[int]{Gate: pacing.NewGate(0, nil), Retry: dispatch.RetryPolicy{}})
	var tx queue.Tx
	fmt.Println(tx, dispatch.Done, queue.ErrQueueFull)
	return q
}
`

func TestRewrite(t *testing.T) {
	got, err := rewrite("x.go", []byte(before))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != after {
		t.Fatalf("rewrite gave\n%s\nwant\n%s", got, after)
	}
	again, err := rewrite("x.go", got)
	if err != nil || string(again) != after {
		t.Fatalf("a second run changed the file (err %v):\n%s", err, again)
	}
}

func TestRewriteAliasesAShadowedName(t *testing.T) {
	src := `package x

import tt "github.com/groupgate/groupgate/throttle"

func f(queue []tt.Operation) int { return len(queue) }
`
	got, err := rewrite("x.go", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`queuepkg "github.com/groupgate/groupgate/queue"`, `func f(queue []queuepkg.Operation) int`} {
		if !strings.Contains(string(got), want) {
			t.Errorf("rewrite gave\n%s\nwant it to hold %s", got, want)
		}
	}
}

func TestRewriteRefusesAnUnknownIdentifier(t *testing.T) {
	src := `package x

import "github.com/groupgate/groupgate/throttle"

var _ = throttle.NoSuchThing
`
	if _, err := rewrite("x.go", []byte(src)); err == nil || !strings.Contains(err.Error(), "throttle.NoSuchThing") {
		t.Fatalf("err = %v, want one naming throttle.NoSuchThing", err)
	}
}

func TestRewriteConformanceSuite(t *testing.T) {
	src := `package x

import (
	"testing"

	"github.com/groupgate/groupgate/throttle"
	"github.com/groupgate/groupgate/throttle/throttletest"
)

// Runs throttletest.RunStoreTests.
func TestStore(t *testing.T) {
	throttletest.RunStoreTests(t, func(*testing.T) throttle.Store[int] { return nil }, 0)
}
`
	got, err := rewrite("x_test.go", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"github.com/groupgate/groupgate/queue/queuetest"`, `// Runs queuetest.RunStoreTests.`,
		`queuetest.RunStoreTests(t, func(*testing.T) queue.Store[int] { return nil }, 0)`} {
		if !strings.Contains(string(got), want) {
			t.Errorf("rewrite gave\n%s\nwant it to hold %s", got, want)
		}
	}
	if strings.Contains(string(got), "throttle") {
		t.Errorf("rewrite left throttle in\n%s", got)
	}
}
