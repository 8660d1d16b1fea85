// Package testkit holds the helpers that tests across groupgate share: a
// settable clock, self-signed certificates, a deadline-bound poll and the
// loop that runs a conformance suite's cases on fresh stores.
//
// It exists so that each of these is written once: before it, settable
// clocks, certificate builders and polling loops had been copied into a
// dozen test files, each slightly different. It is a normal package so that
// the `…test` conformance packages (tenantstest, throttletest, ...) can use
// it too, but only tests and those packages may import it; production code
// must not.
package testkit
