package console

import (
	"crypto/rand"
	"encoding/base64"
	"sync"
	"time"
)

// Session is what the server keeps of a signed-in browser: a reference to
// the API key it signed in with, never the key itself.
type Session struct {
	// KeyID is the id of the API key the session signed in with.
	KeyID string
	// CSRF is the synchronizer token every changing form must carry.
	CSRF string
	// Created is when the session began; LastSeen its last activity.
	Created, LastSeen time.Time
}

// Sessions stores sessions by id. Implementations are safe for concurrent
// use.
type Sessions interface {
	// Create stores s under a new random id and returns the id. It keeps
	// at most MaxSessionsPerKey sessions of one key and MaxSessions in all,
	// ending the oldest to make room.
	Create(s Session) (string, error)
	// Get returns the session with id.
	Get(id string) (Session, bool)
	// Touch records activity at t.
	Touch(id string, t time.Time)
	// Delete ends the session with id; unknown ids are ignored.
	Delete(id string)
	// Sweep deletes sessions for which expired is true.
	Sweep(expired func(Session) bool)
}

// Limits on stored sessions: a key signed in from more browsers than
// MaxSessionsPerKey loses its oldest session, and so does the whole store
// past MaxSessions.
const (
	MaxSessionsPerKey = 5
	MaxSessions       = 10000
)

// MemorySessions keeps sessions in this process's memory.
type MemorySessions struct {
	mu sync.Mutex
	m  map[string]Session
}

// NewMemorySessions returns an empty in-memory session store.
func NewMemorySessions() *MemorySessions { return &MemorySessions{m: map[string]Session{}} }

// Create implements Sessions.
func (m *MemorySessions) Create(s Session) (string, error) {
	id, err := randomToken()
	if err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.evictOldest(MaxSessionsPerKey-1, func(o Session) bool { return o.KeyID == s.KeyID })
	m.evictOldest(MaxSessions-1, func(Session) bool { return true })
	m.m[id] = s
	return id, nil
}

// evictOldest deletes the oldest sessions for which match is true until at
// most keep of them are left. m.mu is held.
func (m *MemorySessions) evictOldest(keep int, match func(Session) bool) {
	for {
		n, oldest := 0, ""
		for id, o := range m.m {
			if !match(o) {
				continue
			}
			n++
			if oldest == "" || o.Created.Before(m.m[oldest].Created) {
				oldest = id
			}
		}
		if n <= keep {
			return
		}
		delete(m.m, oldest)
	}
}

// Get implements Sessions.
func (m *MemorySessions) Get(id string) (Session, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.m[id]
	return s, ok
}

// Touch implements Sessions.
func (m *MemorySessions) Touch(id string, t time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.m[id]; ok && t.After(s.LastSeen) {
		s.LastSeen = t
		m.m[id] = s
	}
}

// Delete implements Sessions.
func (m *MemorySessions) Delete(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.m, id)
}

// Sweep implements Sessions.
func (m *MemorySessions) Sweep(expired func(Session) bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, s := range m.m {
		if expired(s) {
			delete(m.m, id)
		}
	}
}

// Len returns how many sessions are stored.
func (m *MemorySessions) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.m)
}

// randomToken returns 32 random bytes, base64url-encoded.
func randomToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}
