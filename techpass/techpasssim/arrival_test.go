package techpasssim_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/groupgate/groupgate/techpass/techpasssim"
)

// TestListenerStampsArrivalNotHandler: the simulator measures gaps when
// requests reach it, as TechPass's edge does, not when its handler gets to
// run. A client sends two requests exactly one interval apart on the wire
// (the second no sooner than the interval after the first one's write
// returned, hence after the first arrived); the simulator's process is slow
// to handle the first (100 ms, as a busy race-instrumented test process
// was). Stamped in the handler, the gap would look 100 ms short and count
// as a violation; stamped by the Listener, it is a full interval.
func TestListenerStampsArrivalNotHandler(t *testing.T) {
	const interval, slow = 300 * time.Millisecond, 100 * time.Millisecond
	sim := techpasssim.New(techpasssim.Config{Interval: interval, Seed: 1}) // the real clock
	if err := sim.AddNamespace(shipNamespace()); err != nil {
		t.Fatal(err)
	}
	var served atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/iam/") && served.Add(1) == 1 {
			time.Sleep(slow) // the process is busy before the handler runs
		}
		sim.Handler().ServeHTTP(w, r)
	}))
	srv.Listener = sim.Listener(srv.Listener)
	srv.Start()
	defer srv.Close()

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rd := bufio.NewReader(conn)
	// An uncounted request first: the connection is accepted, and its
	// kernel stamps asked for, before the requests measured are sent.
	if _, err := conn.Write([]byte("GET /_sim/stats HTTP/1.1\r\nHost: techpass\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	if resp, err := http.ReadResponse(rd, nil); err != nil {
		t.Fatal(err)
	} else {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	req := "GET /iam/namespace/SHIP/groups HTTP/1.1\r\nHost: techpass\r\nx-api-key: " + shipKey + "\r\n\r\n"
	// send returns moments before and after the request reached the
	// simulator's socket.
	send := func() (before, wrote time.Time) {
		before = time.Now()
		if _, err := conn.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		wrote = time.Now()
		resp, err := http.ReadResponse(rd, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		// No bearer token: counted, then refused with 401 (or 429 for a
		// violation, which the stats below report).
		if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("answer %d, want 401", resp.StatusCode)
		}
		return before, wrote
	}
	before1, wrote1 := send()
	time.Sleep(time.Until(wrote1.Add(interval)))
	_, wrote2 := send()

	st := sim.Stats().Namespaces[ns]
	gap, ok := st.MinGap()
	if !ok || st.Requests != 2 {
		t.Fatalf("stats %+v, want 2 requests", st)
	}
	if st.Violations != 0 || gap < interval {
		t.Errorf("simulator counted %d violations, gap %v; want 0 and >= %v: it stamped the first request when its handler ran, %v late", st.Violations, gap, interval, slow)
	}
	if most := wrote2.Sub(before1); gap > most {
		t.Errorf("gap %v, want at most %v: the second request arrived before its write returned, the first after its write began", gap, most)
	}
}
