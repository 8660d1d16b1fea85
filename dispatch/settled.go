package dispatch

import "sync"

// Settled tells waiters when operations reach a final state, so a request
// can be held until its operation finishes (Prefer: wait). It only signals:
// waiters read the outcome from the queue.Store. The zero value is ready to use
// and it is safe for concurrent use.
type Settled struct {
	mu      sync.Mutex
	waiters map[string]map[chan struct{}]struct{}
}

// Wait returns a channel that is closed when Notify(id) is called, and a
// function to stop waiting. To avoid missing a notification, call Wait
// first, then read the operation, then receive.
func (s *Settled) Wait(id string) (done <-chan struct{}, stop func()) {
	ch := make(chan struct{})
	s.mu.Lock()
	if s.waiters == nil {
		s.waiters = map[string]map[chan struct{}]struct{}{}
	}
	if s.waiters[id] == nil {
		s.waiters[id] = map[chan struct{}]struct{}{}
	}
	s.waiters[id][ch] = struct{}{}
	s.mu.Unlock()
	return ch, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if w, ok := s.waiters[id]; ok {
			delete(w, ch)
			if len(w) == 0 {
				delete(s.waiters, id)
			}
		}
	}
}

// Notify wakes every waiter of id.
func (s *Settled) Notify(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch := range s.waiters[id] {
		close(ch)
	}
	delete(s.waiters, id)
}

// Waiting returns how many waiters are registered, for tests and metrics.
func (s *Settled) Waiting() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, w := range s.waiters {
		n += len(w)
	}
	return n
}
