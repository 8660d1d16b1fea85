package console

import (
	"sync"
	"time"
)

// Sign-in attempts that fail are limited per client address and per key
// id: past the limit within a window, sign-in is refused without checking
// the key until the window ends.
const (
	signinWindow        = time.Minute
	signinFailuresPerIP = 20
	signinFailuresByKey = 5
	// limiterEntries bounds the addresses and key ids tracked at once;
	// past it, new ones are limited together under one entry.
	limiterEntries = 10000
)

// failureLimiter counts failures by name in fixed windows.
type failureLimiter struct {
	mu sync.Mutex
	m  map[string]*failureWindow
}

type failureWindow struct {
	start time.Time
	n     int
}

func newFailureLimiter() *failureLimiter { return &failureLimiter{m: map[string]*failureWindow{}} }

func (l *failureLimiter) window(name string, now time.Time) *failureWindow {
	w, ok := l.m[name]
	if !ok || now.Sub(w.start) >= signinWindow {
		if !ok && len(l.m) >= limiterEntries {
			name = "(overflow)"
			if w, ok = l.m[name]; ok && now.Sub(w.start) < signinWindow {
				return w
			}
		}
		w = &failureWindow{start: now}
		l.m[name] = w
	}
	return w
}

// blocked reports whether name has had limit failures in its window.
func (l *failureLimiter) blocked(name string, limit int, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.window(name, now).n >= limit
}

// fail counts a failure of name and returns the count in its window.
func (l *failureLimiter) fail(name string, now time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.window(name, now)
	w.n++
	return w.n
}

// sweep forgets windows that ended.
func (l *failureLimiter) sweep(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for name, w := range l.m {
		if now.Sub(w.start) >= signinWindow {
			delete(l.m, name)
		}
	}
}
