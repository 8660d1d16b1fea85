package testkit

import (
	"os"
	"testing"
)

// WriteFile writes content and a newline to path (mode 0600), failing the
// test if it cannot.
func WriteFile(tb testing.TB, path, content string) {
	tb.Helper()
	if err := os.WriteFile(path, []byte(content+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
}
