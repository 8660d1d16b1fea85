package techpass_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/groupgate/groupgate/pacing"
	"github.com/groupgate/groupgate/techpass"
	"github.com/groupgate/groupgate/techpass/techpasssim"
)

// stallConn holds every write for a while before it reaches the socket
// while stall is set: the client process descheduled (or stopped) between
// writing a request into its buffer and flushing it.
type stallConn struct {
	net.Conn
	stall *atomic.Bool
	by    time.Duration
}

func (c stallConn) Write(b []byte) (int, error) {
	if c.stall.Load() {
		time.Sleep(c.by)
	}
	return c.Conn.Write(b)
}

// TestPacedFromWhenSent: the gate spaces requests from when their bytes
// were written to the socket, not from when net/http wrote them into its
// buffer. Every other request is held 60 ms between the two (a 100 ms
// interval); spaced from the buffer, the next request would reach the
// simulator about 40 ms after it. The simulator stamps arrivals when the
// bytes reached its socket (Listener), so it sees the gaps on the wire.
func TestPacedFromWhenSent(t *testing.T) {
	const interval, stall = 100 * time.Millisecond, 60 * time.Millisecond
	sim := techpasssim.New(techpasssim.Config{Interval: interval, Seed: 7}) // the real clock: the wire's stamps
	if err := sim.AddNamespace(techpasssim.Namespace{Name: "SHIP", DirectoryID: "dir", ClientID: "cid", ClientSecret: "s3cret-one", APIKeys: []string{"key-one"}}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(sim.Handler())
	srv.Listener = sim.Listener(srv.Listener)
	srv.Start()
	t.Cleanup(srv.Close)

	var stalling atomic.Bool
	tr := techpass.NewTransport(func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return stallConn{Conn: c, stall: &stalling, by: stall}, nil
	})
	t.Cleanup(tr.CloseIdleConnections)
	c, err := techpass.New(techpass.Config{
		Namespace: "SHIP", APIURL: srv.URL, TokenURL: techpass.TokenURL(srv.URL, "dir"), ClientID: "cid",
		ClientSecret: func() (string, error) { return "s3cret-one", nil },
		APIKey:       func() (string, error) { return "key-one", nil },
		// No guard for jitter: spaced from the write, the wire gap is at
		// least the gate's interval by construction. The 1 ms covers the
		// gate's monotonic clock against the kernel's wall-clock stamps.
		Pacer:      pacing.NewGate(interval+time.Millisecond, nil),
		HTTPClient: &http.Client{Transport: tr, Timeout: 10 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Refresh(ctx); err != nil { // the token first, unpaced
		t.Fatal(err)
	}
	for i := range 6 {
		stalling.Store(i%2 == 0)
		if _, err := c.ListGroups(ctx); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	st := sim.Stats().Namespaces["SHIP"]
	gap, _ := st.MinGap()
	if st.Requests != 6 || st.Violations != 0 || gap < interval {
		t.Errorf("simulator: %d requests, %d violations, minimum gap %v; want 6, 0 and >= %v", st.Requests, st.Violations, gap, interval)
	}
}
