// Package server wires the service together: configuration, logging, the
// bbolt store, one dispatcher and TechPass client per tenant, the built-in
// TechPass simulator for tenants without an upstream, and the Echo HTTP
// server with its middleware and its one error handler, which turns domain
// errors into RFC 9457 problems.
//
// It is the only package that reads configuration; every other package
// receives built dependencies.
package server
