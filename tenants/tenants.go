package tenants

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/groupgate/groupgate/names"
)

// Errors returned by this package, wrapped with context.
var (
	// ErrUnauthenticated means no credential, or one that is unknown,
	// malformed, revoked or expired.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrForbidden means the credential is valid but may not do this.
	ErrForbidden = errors.New("forbidden")
	// ErrDisabled means the credential's tenant or project is disabled.
	ErrDisabled = errors.New("tenant or project disabled")
	// ErrInvalid means a tenant, project or key definition breaks a rule;
	// the error is an *InvalidError listing every problem.
	ErrInvalid = errors.New("invalid definition")
	// ErrNotFound means no such tenant, project or key.
	ErrNotFound = errors.New("not found")
	// ErrConflict means the name or id is taken.
	ErrConflict = errors.New("already exists")
	// ErrQuota means the projects' group quotas would exceed the tenant's
	// group limit.
	ErrQuota = errors.New("group quotas exceed the tenant's group limit")
)

// Scope is a permission a project credential carries.
type Scope string

// The scopes of project credentials over groups.
const (
	GroupsRead  Scope = "groups:read"
	GroupsWrite Scope = "groups:write"
)

// AllScopes lists every project scope.
func AllScopes() []Scope { return ProjectScopes() }

// Principal is an authenticated caller.
type Principal struct {
	Role Role
	// KeyID identifies an API key credential; empty for a JWT caller.
	KeyID string
	// Subject identifies a JWT caller: "jwt:<issuer>#<subject>".
	Subject string
	// Tenant and Project the credential is bound to (per its role).
	Tenant  string
	Project string
	// Scopes of a project credential.
	Scopes []Scope
}

// Actor returns the principal's identity for records and logs; it is not
// secret.
func (p Principal) Actor() string {
	if p.KeyID != "" {
		return "key:" + p.KeyID
	}
	return p.Subject
}

// keyRE is a key as issued: gk_, the id (names.KeyIDPattern), _ and 43
// base64url characters of secret.
var keyRE = regexp.MustCompile(`^gk_(` + strings.TrimSuffix(strings.TrimPrefix(names.KeyIDPattern, "^"), "$") + `)_([A-Za-z0-9_-]{43})$`)

// NewKey returns a new random key and its stored form (ID and Hash only).
// The key is shown to its owner once and never stored.
func NewKey() (key string, stored Key) {
	var id [10]byte
	var secret [32]byte
	_, _ = rand.Read(id[:]) // crypto/rand.Read never fails (Go 1.24+)
	_, _ = rand.Read(secret[:])
	keyID := hex.EncodeToString(id[:])
	key = "gk_" + keyID + "_" + base64.RawURLEncoding.EncodeToString(secret[:])
	return key, Key{ID: keyID, Hash: sha256.Sum256([]byte(key))}
}

// HashString formats a key's hash as written in configuration:
// "sha256:<hex>".
func HashString(h [sha256.Size]byte) string { return "sha256:" + hex.EncodeToString(h[:]) }

// ParseHash reads a hash written by HashString.
func ParseHash(s string) ([sha256.Size]byte, error) {
	var h [sha256.Size]byte
	hexPart, ok := strings.CutPrefix(s, "sha256:")
	if !ok {
		return h, fmt.Errorf("%w: key hash must start with sha256:", ErrInvalid)
	}
	b, err := hex.DecodeString(hexPart)
	if err != nil || len(b) != sha256.Size {
		return h, fmt.Errorf("%w: key hash must be 64 hex digits after sha256:", ErrInvalid)
	}
	copy(h[:], b)
	return h, nil
}

// KeyID returns the id part of a well-formed key, for logs; "" otherwise.
func KeyID(key string) string {
	if m := keyRE.FindStringSubmatch(key); m != nil {
		return m[1]
	}
	return ""
}
