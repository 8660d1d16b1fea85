package testkit

import "testing"

// Case is one case of a conformance suite: a name for its subtest and the
// test itself, run on a fresh store.
type Case[S any] struct {
	Name string
	Run  func(t *testing.T, s S)
}

// RunCases runs each case in its own subtest, in order, on a fresh store
// from newStore (which arranges the store's clean-up with t.Cleanup).
func RunCases[S any](t *testing.T, newStore func(*testing.T) S, cases []Case[S]) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) { c.Run(t, newStore(t)) })
	}
}
