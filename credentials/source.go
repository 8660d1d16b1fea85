package credentials

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/groupgate/groupgate/tenants"
)

// Kind names one credential of a tenant.
type Kind string

// The kinds of credential.
const (
	// KindClient is the client credential: a client secret, or a PEM
	// bundle (certificate, and its private key unless the key has its own
	// file) for certificate client assertions.
	KindClient Kind = "client credential"
	// KindKey is the client certificate's private key in a file of its own.
	KindKey    Kind = "client private key"
	KindAPIKey Kind = "API key"
	// KindWebhookSecret and KindPreviousWebhookSecret verify TechPass's
	// webhook deliveries (the previous one during a changeover).
	KindWebhookSecret         Kind = "webhook secret"
	KindPreviousWebhookSecret Kind = "previous webhook secret"
)

// pemMarker starts every PEM block; an Azure AD client secret never
// contains it, so a client credential holding it is a certificate bundle.
const pemMarker = "-----BEGIN "

// Source is where one credential is read from: a file, an environment
// variable, or a value sealed in the store. Build one with Loader.Source.
type Source struct {
	kind Kind
	ref  tenants.Credential
	// open returns a sealed value in clear; set for stored credentials.
	open func() ([]byte, error)

	// The last content read, and when it last changed (the file's
	// modification time, when the value was stored, or when this process
	// first saw the variable). Guarded by Tenant.mu when the source is a
	// Tenant's.
	data    []byte
	changed time.Time
	// problem is why the last read could not be used, nil when it could.
	problem error
	// aged is whether the credential is flagged as older than max_age.
	aged bool
}

// Kind returns which credential s is.
func (s *Source) Kind() Kind { return s.kind }

// Where names the source for logs and /readyz, never its value.
func (s *Source) Where() string {
	switch s.ref.Kind {
	case tenants.CredentialFile:
		return "file " + s.ref.Ref
	case tenants.CredentialEnv:
		return "variable " + s.ref.Ref
	default:
		return "stored value"
	}
}

// Read returns the credential's current content, trimmed of surrounding
// space, and when it last changed. An empty value is an error.
func (s *Source) Read(getenv func(string) string, now time.Time) ([]byte, time.Time, error) {
	var b []byte
	var changed time.Time
	switch s.ref.Kind {
	case tenants.CredentialFile:
		fi, err := os.Stat(s.ref.Ref)
		if err != nil {
			return nil, time.Time{}, err
		}
		if b, err = os.ReadFile(s.ref.Ref); err != nil {
			return nil, time.Time{}, err
		}
		changed = fi.ModTime()
	case tenants.CredentialEnv:
		b = []byte(getenv(s.ref.Ref))
		changed = s.changed
		if changed.IsZero() || !bytes.Equal(bytes.TrimSpace(b), s.data) {
			changed = now
		}
	case tenants.CredentialStored:
		if s.open == nil {
			return nil, time.Time{}, errors.New("stored encrypted, but no key-encryption key is configured")
		}
		var err error
		if b, err = s.open(); err != nil {
			return nil, time.Time{}, fmt.Errorf("open stored value: %w", err)
		}
		changed = s.ref.SetAt
	default:
		return nil, time.Time{}, errors.New("not configured")
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, time.Time{}, errors.New("empty")
	}
	return b, changed, nil
}

// ReadFile reads a whole secret file (the key-encryption key, the bootstrap
// operator key), trimmed of surrounding space. An empty file is an error.
func ReadFile(path string) ([]byte, error) {
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
