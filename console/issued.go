package console

import (
	"sync"
	"time"

	"github.com/groupgate/groupgate/client"
)

// CredentialClient, CredentialKey and CredentialAPIKey name a tenant's
// TechPass credentials, as Config.CredentialAges names them.
const (
	CredentialClient = "client credential"
	CredentialKey    = "client private key"
	CredentialAPIKey = "API key"
)

// issuedTTL is how long a newly issued key waits in memory for its
// session to be shown it.
const issuedTTL = time.Minute

// issuedKeys holds each session's newly issued key until it is shown.
type issuedKeys struct {
	mu sync.Mutex
	m  map[string]issuedKey // by session id
}

type issuedKey struct {
	created client.KeyCreated
	at      time.Time
}

func (k *issuedKeys) put(session string, created client.KeyCreated, now time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.m == nil {
		k.m = map[string]issuedKey{}
	}
	k.m[session] = issuedKey{created, now}
}

// take returns the session's issued key and forgets it.
func (k *issuedKeys) take(session string, now time.Time) (client.KeyCreated, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	i, ok := k.m[session]
	delete(k.m, session)
	return i.created, ok && now.Sub(i.at) < issuedTTL
}

// sweep forgets keys nobody came to see.
func (k *issuedKeys) sweep(now time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for id, i := range k.m {
		if now.Sub(i.at) >= issuedTTL {
			delete(k.m, id)
		}
	}
}
