package server

// StopDispatcher stops tenant's dispatcher in s (its runtime stays; on
// PostgreSQL its lease is released, for another replica to take): tests
// of signals between replicas choose so which replica dispatches.
func StopDispatcher(s *Server, tenant string) { s.queue.Remove(tenant) }

// Runtime returns tenant's runtime in s, compared by identity (a rebuild
// replaces it), and whether it has one.
func Runtime(s *Server, tenant string) (any, bool) {
	rt := s.runtimes.get(tenant)
	return rt, rt != nil
}
