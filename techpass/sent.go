package techpass

import (
	"context"
	"net"
	"net/http"
	"sync"
)

// When a request is sent. net/http's trace hooks (WroteHeaders,
// WroteRequest) fire when the request is written into the connection's
// buffer, before the buffer is flushed to the socket: a process descheduled
// or stopped in between (measured: up to 21.6 ms under -race on a loaded
// 2-core machine, 5.8 ms in a plain replica) sends the request later than
// the gate believes, and the next request, spaced from the earlier moment,
// reaches TechPass less than the interval after it. The connections of
// NewTransport tell the client when a request's bytes were handed to the
// operating system, the latest moment they can have left; the gate spaces
// the next request from that.

// NewTransport returns an HTTP transport for a tenant's TechPass client
// (Config.HTTPClient) whose connections report when each request's bytes
// were written to the socket, so that a Pacer implementing Starter spaces
// requests by when they were really sent. It is http.DefaultTransport's
// configuration with connections of its own; dial, if not nil, replaces
// the dialer (tests use it to slow connections down).
func NewTransport(dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	if dial == nil {
		dial = t.DialContext
	}
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &sentConn{Conn: c}, nil
	}
	return t
}

// sentConn is a connection that tells the request using it (watch) when
// its bytes were written.
type sentConn struct {
	net.Conn
	mu   sync.Mutex
	sent func()
}

func (c *sentConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if n > 0 {
		c.mu.Lock()
		sent := c.sent
		c.mu.Unlock()
		if sent != nil {
			sent()
		}
	}
	return n, err
}

// watch makes every write call sent, until watch(nil).
func (c *sentConn) watch(sent func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sent = sent
}

// sentConnOf returns the sentConn under c (a TLS connection wraps it), or
// nil if NewTransport did not dial c.
func sentConnOf(c net.Conn) *sentConn {
	for c != nil {
		if sc, ok := c.(*sentConn); ok {
			return sc
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return nil
		}
		c = u.NetConn()
	}
	return nil
}

// sentWatch is one request's watch of the connections it was sent on (a
// request the transport retries on a fresh connection is sent on two).
type sentWatch struct {
	mu   sync.Mutex
	conn *sentConn
}

// watch makes c call sent after each write, and the previous connection
// watched, if any, no longer. A nil c is no sentConn: nothing is watched.
func (w *sentWatch) watch(c *sentConn, sent func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conn != nil && w.conn != c {
		w.conn.watch(nil)
	}
	w.conn = c
	if c != nil {
		c.watch(sent)
	}
}

// watching reports whether the request is on a connection it watches.
func (w *sentWatch) watching() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.conn != nil
}

// stop ends the watch once the request is done.
func (w *sentWatch) stop() { w.watch(nil, nil) }
