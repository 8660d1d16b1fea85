package server

import (
	"crypto/sha256"
	"fmt"
	"os"
	"strings"
)

// readSecretFile reads a whole secret file, trimmed of surrounding space.
func readSecretFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	b = []byte(strings.TrimSpace(string(b)))
	if len(b) == 0 {
		return nil, fmt.Errorf("%s is empty", path)
	}
	return b, nil
}

func sha256Sum(s string) [sha256.Size]byte { return sha256.Sum256([]byte(strings.TrimSpace(s))) }
