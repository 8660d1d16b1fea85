package tenants

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Errors returned by this package, wrapped with context.
var (
	// ErrUnauthenticated means no credential, or one that is unknown,
	// malformed, revoked or expired.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrForbidden means the credential is valid but may not do this.
	ErrForbidden = errors.New("forbidden")
	// ErrInvalidConfig means a tenant, project or key definition is invalid.
	ErrInvalidConfig = errors.New("invalid tenant configuration")
)

// Scope is a permission a key carries.
type Scope string

// The scopes of project keys.
const (
	GroupsRead  Scope = "groups:read"
	GroupsWrite Scope = "groups:write"
)

// AllScopes lists every scope, the default for a key that names none.
func AllScopes() []Scope { return []Scope{GroupsRead, GroupsWrite} }

// Tenant is a TechPass namespace that uses the service.
type Tenant struct {
	// Name is the namespace, upper case, e.g. SHIP.
	Name string
	// GroupLimit is the namespace's group limit in TechPass (default 50).
	GroupLimit int
	// Interval is the minimum gap between the starts of two upstream requests.
	Interval time.Duration
	Projects []Project
}

// Project is a downstream team inside a tenant.
type Project struct {
	// Name is upper case, e.g. MOH.
	Name string
	Keys []Key
}

// Key is an issued API key, as stored: never the key itself.
type Key struct {
	// ID is the key's public identifier, the <keyid> part of the key.
	ID string
	// Hash is the SHA-256 of the whole key.
	Hash [sha256.Size]byte
	// Scopes the key carries; empty means AllScopes.
	Scopes []Scope
	// ExpiresAt, if not zero, is when the key stops working.
	ExpiresAt time.Time
}

// Principal is an authenticated caller.
type Principal struct {
	// KeyID identifies the credential, for logs and audit; it is not secret.
	KeyID   string
	Tenant  string
	Project string
	Scopes  []Scope
}

// Actor returns the principal's identity for operation records.
func (p Principal) Actor() string { return "key:" + p.KeyID }

var keyRE = regexp.MustCompile(`^gk_([a-z0-9]{8,32})_([A-Za-z0-9_-]{43})$`)

// keyEntry is a key with where it belongs.
type keyEntry struct {
	key     Key
	tenant  string
	project string
}

// Directory answers who a key belongs to and what it may do. It is built
// once from configuration and is safe for concurrent use.
type Directory struct {
	tenants map[string]Tenant
	keys    map[string]keyEntry
	now     func() time.Time
	// dummy is compared against when a key id is unknown, so that an unknown
	// id costs the same as a wrong secret.
	dummy [sha256.Size]byte
}

// NewDirectory checks ts and returns a directory over them. A nil now uses
// time.Now.
func NewDirectory(ts []Tenant, now func() time.Time) (*Directory, error) {
	if now == nil {
		now = time.Now
	}
	d := &Directory{tenants: map[string]Tenant{}, keys: map[string]keyEntry{}, now: now}
	var problems []string
	for _, t := range ts {
		if _, dup := d.tenants[t.Name]; dup {
			problems = append(problems, fmt.Sprintf("tenant %s defined twice", t.Name))
		}
		d.tenants[t.Name] = t
		seen := map[string]bool{}
		for _, p := range t.Projects {
			if seen[p.Name] {
				problems = append(problems, fmt.Sprintf("project %s:%s defined twice", t.Name, p.Name))
			}
			seen[p.Name] = true
			for _, k := range p.Keys {
				if _, dup := d.keys[k.ID]; dup {
					problems = append(problems, fmt.Sprintf("key id %s used twice", k.ID))
				}
				for _, s := range k.Scopes {
					if !slices.Contains(AllScopes(), s) {
						problems = append(problems, fmt.Sprintf("key %s: unknown scope %q", k.ID, s))
					}
				}
				d.keys[k.ID] = keyEntry{key: k, tenant: t.Name, project: p.Name}
			}
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrInvalidConfig, strings.Join(problems, "; "))
	}
	return d, nil
}

// Tenants returns the configured tenants.
func (d *Directory) Tenants() []Tenant {
	out := make([]Tenant, 0, len(d.tenants))
	for _, t := range d.tenants {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b Tenant) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Tenant returns the tenant named name (upper case) and whether it exists.
func (d *Directory) Tenant(name string) (Tenant, bool) {
	t, ok := d.tenants[name]
	return t, ok
}

// Authenticate returns the principal that presented key. It returns
// ErrUnauthenticated, with a reason safe to log, for a malformed, unknown,
// wrong or expired key. The comparison is constant-time.
func (d *Directory) Authenticate(ctx context.Context, key string) (Principal, error) {
	m := keyRE.FindStringSubmatch(key)
	if m == nil {
		return Principal{}, fmt.Errorf("%w: malformed key", ErrUnauthenticated)
	}
	sum := sha256.Sum256([]byte(key))
	e, known := d.keys[m[1]]
	want := d.dummy
	if known {
		want = e.key.Hash
	}
	if subtle.ConstantTimeCompare(sum[:], want[:]) != 1 || !known {
		return Principal{}, fmt.Errorf("%w: unknown key or wrong secret (key id %s)", ErrUnauthenticated, m[1])
	}
	if !e.key.ExpiresAt.IsZero() && !d.now().Before(e.key.ExpiresAt) {
		return Principal{}, fmt.Errorf("%w: key %s expired", ErrUnauthenticated, m[1])
	}
	scopes := e.key.Scopes
	if len(scopes) == 0 {
		scopes = AllScopes()
	}
	return Principal{KeyID: e.key.ID, Tenant: e.tenant, Project: e.project, Scopes: scopes}, nil
}

// Authorize checks that p may use scope in project of tenant (both upper
// case). It returns ErrForbidden otherwise.
func Authorize(p Principal, tenant, project string, scope Scope) error {
	if p.Tenant != tenant || p.Project != project {
		return fmt.Errorf("%w: key %s belongs to %s:%s", ErrForbidden, p.KeyID, p.Tenant, p.Project)
	}
	if !slices.Contains(p.Scopes, scope) {
		return fmt.Errorf("%w: key %s lacks scope %s", ErrForbidden, p.KeyID, scope)
	}
	return nil
}

// NewKey returns a new random key and its stored form. The key is shown to
// its owner once and never stored.
func NewKey() (key string, stored Key) {
	var id [10]byte
	var secret [32]byte
	_, _ = rand.Read(id[:]) // crypto/rand.Read never fails (Go 1.24+)
	_, _ = rand.Read(secret[:])
	keyID := strings.ToLower(hex.EncodeToString(id[:]))
	key = "gk_" + keyID + "_" + base64.RawURLEncoding.EncodeToString(secret[:])
	return key, Key{ID: keyID, Hash: sha256.Sum256([]byte(key))}
}

// HashString formats a key's hash as stored in configuration: "sha256:<hex>".
func HashString(h [sha256.Size]byte) string { return "sha256:" + hex.EncodeToString(h[:]) }

// ParseHash reads a hash written by HashString.
func ParseHash(s string) ([sha256.Size]byte, error) {
	var h [sha256.Size]byte
	hexPart, ok := strings.CutPrefix(s, "sha256:")
	if !ok {
		return h, fmt.Errorf("%w: key hash must start with sha256:", ErrInvalidConfig)
	}
	b, err := hex.DecodeString(hexPart)
	if err != nil || len(b) != sha256.Size {
		return h, fmt.Errorf("%w: key hash must be 64 hex digits after sha256:", ErrInvalidConfig)
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
