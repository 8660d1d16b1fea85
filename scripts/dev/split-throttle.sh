#!/usr/bin/env bash
# Rewrites Go code written against the former package throttle to the
# packages it was split into (issue 12): queue (the operation model, the
# store contract, the queue's rules, limits and order), dispatch (Dispatcher,
# the Dispatchers registry that was throttle.Queue, outcomes, RetryPolicy,
# Endings, the Settled hub) and pacing (Gate). For branches begun before the
# split: merge, then run this on the tree (or on the directories given).
#
#   scripts/dev/split-throttle.sh            # the whole module
#   scripts/dev/split-throttle.sh server     # only server/
#
# It only renames: imports, qualified identifiers (every exported identifier
# of throttle has a new home; internal/tools/splitthrottle fails on one it
# does not know), the names in comments, and the conformance tests named
# TestThrottleStore*. Running it again changes nothing. It then builds and
# vets the module and fails if anything still imports throttle.
set -euo pipefail

cd "$(dirname "$0")/../.."
[ $# -gt 0 ] || set -- .

go run ./internal/tools/splitthrottle "$@"

# Test functions named for the old package (boltstore, groups).
find "$@" -name '*_test.go' -not -path '*/internal/tools/splitthrottle/*' -print0 |
	xargs -0 -r grep -l 'TestThrottleStore' |
	xargs -r sed -i 's/\bTestThrottleStore/TestQueueStore/g' || true

if grep -rn --include='*.go' '"github.com/groupgate/groupgate/throttle' "$@"; then
	echo "split-throttle: the imports above are left; rewrite them by hand" >&2
	exit 1
fi
if [ -n "$(gofmt -l "$@")" ]; then
	gofmt -l "$@"
	echo "split-throttle: not gofmt-clean" >&2
	exit 1
fi
go build ./... && go vet ./...
echo "split-throttle: done"
