package techpasssim

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// Arrival stamps. TechPass measures its interval at its own edge, when a
// request arrives; a simulator that stamps a request when its handler runs
// measures something later: the time the request's bytes waited for this
// process to read and parse them. In a test process under load (the race
// detector, a busy 2-core machine) that wait reached 80-95 ms while the
// client's own spacing was correct, so the next gap looked that much
// shorter and was counted as a violation the client never committed.
//
// Listener's connections therefore stamp a request when its first bytes
// reached the socket: the kernel's receive timestamp of the first read
// that returned them (Linux, SO_TIMESTAMPNS; a request the client flushed
// at once arrives in one piece), else the moment this process read them. Either is no later than the handler's clock, so the simulator's
// gaps stay as strict as the rule and never stricter than the wire.

// Listener returns l with its connections stamping each request's arrival
// (see above); serve the simulator's Handler on it to measure gaps as
// TechPass would. Requests served through any other listener are stamped
// when their handler runs. With a Config.Now of its own (a fake clock) the
// simulator ignores the stamps and asks its clock.
func (s *Simulator) Listener(l net.Listener) net.Listener {
	return &stampListener{Listener: l, conns: &s.arrivals}
}

// Arrived returns when r's first bytes arrived, as the simulator counts
// it, and false if r did not come through a Listener: for a handler
// wrapped around the simulator's that records arrivals too.
func (s *Simulator) Arrived(r *http.Request) (time.Time, bool) { return s.arrivals.arrived(r) }

// arrivals maps every connection accepted by a Listener, by its local and
// remote addresses, to its stamps. The zero value is ready for use.
type arrivals struct {
	mu    sync.Mutex
	conns map[string]*stampConn
}

func (a *arrivals) add(c *stampConn) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.conns == nil {
		a.conns = map[string]*stampConn{}
	}
	a.conns[c.key] = c
}

func (a *arrivals) remove(c *stampConn) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.conns[c.key] == c {
		delete(a.conns, c.key)
	}
}

// conn returns the connection r came on, or nil if not a Listener's.
func (a *arrivals) conn(r *http.Request) *stampConn {
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.conns[connKey(local, r.RemoteAddr)]
}

// connKey names a connection by its two ends.
func connKey(local net.Addr, remote string) string { return local.String() + " " + remote }

// arrived returns when r's first bytes arrived, and false if r did not
// come through a Listener.
func (a *arrivals) arrived(r *http.Request) (time.Time, bool) {
	if c := a.conn(r); c != nil {
		return c.arrived()
	}
	return time.Time{}, false
}

// done forgets the stamp of r's connection once r is answered, so that the
// next request on the connection is stamped by its own first bytes.
func (a *arrivals) done(r *http.Request) {
	if c := a.conn(r); c != nil {
		c.clear()
	}
}

type stampListener struct {
	net.Listener
	conns *arrivals
}

func (l *stampListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	sc := &stampConn{Conn: c, key: connKey(c.LocalAddr(), c.RemoteAddr().String()), kernel: newKernelReader(c), conns: l.conns}
	l.conns.add(sc)
	return sc, nil
}

// stampConn remembers when the first bytes of the request being read or
// served arrived. HTTP/1.1 clients send a request only after the previous
// answer, so those bytes are the request's.
type stampConn struct {
	net.Conn
	key    string
	kernel *kernelReader // nil: stamp with time.Now after the read
	conns  *arrivals

	mu      sync.Mutex
	first   time.Time
	pending bool
}

func (c *stampConn) Read(b []byte) (int, error) {
	var n int
	var at time.Time
	var err error
	if c.kernel != nil {
		n, at, err = c.kernel.read(b)
	} else {
		n, err = c.Conn.Read(b)
	}
	if n > 0 {
		if at.IsZero() {
			at = time.Now()
		}
		c.mu.Lock()
		if !c.pending {
			c.first, c.pending = at, true
		}
		c.mu.Unlock()
	}
	return n, err
}

func (c *stampConn) Close() error {
	c.conns.remove(c)
	return c.Conn.Close()
}

func (c *stampConn) arrived() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.first, c.pending
}

func (c *stampConn) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pending = false
}

// forgetArrivals wraps next so that every request's stamp is forgotten
// once it is answered (before the answer is flushed, so before the client
// can send the next request).
func (s *Simulator) forgetArrivals(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer s.arrivals.done(r)
		next.ServeHTTP(w, r)
	})
}

// arrivalTime returns when r arrived: its connection's stamp (see
// Listener) when the simulator runs on the real clock, else its clock now.
func (s *Simulator) arrivalTime(r *http.Request) time.Time {
	if s.realClock {
		if at, ok := s.arrivals.arrived(r); ok {
			return at
		}
	}
	return s.cfg.Now()
}
