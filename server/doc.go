// Package server wires the service together and runs it: it reads the
// configuration (package config) and builds everything from it, the bbolt
// store, the built-in TechPass simulator for tenants without an upstream, one
// runtime per tenant (runtime.go: its resolved settings, pacing gate,
// credentials, TechPass client, reconciler, webhook receiver and
// dispatcher, built and replaced as one), the metrics (package metrics) and
// the audit middleware, and the Echo HTTP server with its middleware and its one
// error handler (errors.go), which turns errors into RFC 9457 problems. It
// owns the service's life: start, SIGHUP, graceful shutdown.
//
// It is the only package that reads the configuration; every other package
// receives built dependencies. Main is the groupgate program's flags,
// configuration and logging; cmd/groupgate only wires it to the process.
package server
