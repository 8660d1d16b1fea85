package server_test

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/groupgate/groupgate/internal/apitest"
)

// untestable lists the documented answers (operation and status) that no
// test here can produce, each with the reason. Every other status that
// openapi.yaml documents for an operation must be answered, through the
// validating client, by some test of this package.
var untestable = map[string]string{}

// internalErrors: every operation documents 500 for a failure the server
// cannot attribute to the request (a broken store, a bug); no test provokes
// one on purpose, so 500 is exempt wherever it is documented.
const internalErrors = 500

// TestMain runs the package's tests, then, when the whole package ran (no
// -run, -skip or -short), fails if some operation and status documented in
// openapi.yaml was never answered through the validating client
// (internal/apitest): the contract's statuses are counted from the spec, so
// a status added to it needs a test.
func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if !wholePackage() {
		os.Exit(code)
	}
	tb := &mainTB{}
	exempt := map[string]string{}
	for name, why := range untestable {
		exempt[name] = why
	}
	doc := apitest.Spec(tb)
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			if op.Responses.Status(internalErrors) != nil {
				exempt[fmt.Sprintf("%s %d", op.OperationID, internalErrors)] = "internal error"
			}
		}
	}
	if missing := apitest.Missing(doc, exempt); len(missing) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: contract coverage: %d documented answers were never exercised through the validating client "+
			"(add a test, or a reason in untestable in server/contract_test.go):\n  %s\n", len(missing), strings.Join(missing, "\n  "))
		code = 1
	}
	os.Exit(code)
}

// wholePackage reports whether every test of the package was asked to run.
func wholePackage() bool {
	for _, name := range []string{"test.run", "test.skip"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" {
			return false
		}
	}
	return !testing.Short()
}

// mainTB is the testing.TB that apitest.Spec needs outside a test.
type mainTB struct{ testing.TB }

func (mainTB) Helper() {}
func (mainTB) Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}
