package server

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/groupgate/groupgate/techpass"
)

// fileSecret reads the secret in path at each use, so a secret manager can
// rotate the file without a restart. Surrounding white space is trimmed.
func fileSecret(path string) techpass.Secret {
	return func() (string, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("read secret file %s: %w", path, err)
		}
		s := strings.TrimSpace(string(b))
		if s == "" {
			return "", fmt.Errorf("secret file %s is empty", path)
		}
		return s, nil
	}
}

// envSecret reads the secret in environment variable name at each use.
func envSecret(name string, getenv func(string) string) techpass.Secret {
	return func() (string, error) {
		s := strings.TrimSpace(getenv(name))
		if s == "" {
			return "", fmt.Errorf("secret variable %s is unset or empty", name)
		}
		return s, nil
	}
}

// secretFrom picks the file or the variable, whichever is configured.
func secretFrom(file, env string, getenv func(string) string) (techpass.Secret, error) {
	switch {
	case file != "":
		return fileSecret(file), nil
	case env != "":
		return envSecret(env, getenv), nil
	default:
		return nil, errors.New("no secret source configured")
	}
}

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
