package server

// StopDispatcher stops tenant's dispatcher in s (its runtime stays), as a
// replica that does not lead the tenant: tests of signals between
// replicas use it until per-tenant leases decide which replica dispatches.
func StopDispatcher(s *Server, tenant string) { s.queue.Remove(tenant) }

// Runtime returns tenant's runtime in s, compared by identity (a rebuild
// replaces it), and whether it has one.
func Runtime(s *Server, tenant string) (any, bool) {
	rt := s.runtimes.get(tenant)
	return rt, rt != nil
}
