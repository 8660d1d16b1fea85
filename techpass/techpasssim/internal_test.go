package techpasssim

import (
	"testing"
	"time"

	"github.com/groupgate/groupgate/techpass"
)

// TestEveryRouteImplemented is the drift check between the route table and
// the simulator: a route added to techpass.Routes without a handler here
// fails this test (and is answered 501 meanwhile).
func TestEveryRouteImplemented(t *testing.T) {
	s := New(Config{})
	for _, rt := range techpass.Routes() {
		if s.routeHandler(rt.Name) == nil {
			t.Errorf("route %s (%s %s) has no simulator handler", rt.Name, rt.Method, rt.Pattern)
		}
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Second:            "1",
		0:                       "1",
		time.Nanosecond:         "1",
		time.Second:             "1",
		time.Second + 1:         "2",
		1500 * time.Millisecond: "2",
		2100 * time.Millisecond: "3",
		time.Minute:             "60",
	} {
		if got := retryAfterSeconds(d); got != want {
			t.Errorf("retryAfterSeconds(%v) = %q, want %q", d, got, want)
		}
	}
}
