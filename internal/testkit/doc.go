// Package testkit holds the helpers that tests across groupgate share: a
// settable clock (Clock, and ShiftedClock for real time moved ahead),
// self-signed certificates (NewCert), deadline-bound waits (Eventually,
// Poll), secret and configuration files (WriteFile), a background runner
// for servers (Serve), a latency-reporting benchmark loop (RunWriters) and the loop that runs a conformance suite's cases on
// fresh stores (RunCases).
//
// It exists so that each of these is written once: before it, settable
// clocks, certificate builders, polling loops and conformance runners had
// been copied across the packages' tests, each slightly different.
//
// It is a normal package so that the `…test` conformance packages
// (tenantstest, queuetest, groupstest, audittest, webhookstest) can use
// it too, but only tests and those packages may import it; production code
// must not. It imports the standard library only.
package testkit
