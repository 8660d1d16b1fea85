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

// FuzzParseCursor: parsing never panics, and a cursor is accepted only in
// the one spelling encodeCursor gives it.
func FuzzParseCursor(f *testing.F) {
	id := "00000000-0000-4000-8000-000000000001"
	f.Add("")
	f.Add(encodeCursor(id))
	f.Add(encodeCursor(id) + "=")
	f.Add(encodeCursor(id)[:10] + "\n" + encodeCursor(id)[10:])
	f.Add(encodeCursor("ABCDEF01-2345-4678-9ABC-DEF012345678"))
	f.Add("YWZ0ZXI6")
	f.Add("!!!")
	f.Fuzz(func(t *testing.T, c string) {
		after, ok := parseCursor(c)
		switch {
		case !ok && after != "":
			t.Fatalf("parseCursor(%q) refused but returned %q", c, after)
		case ok && c == "" && after != "":
			t.Fatalf("empty cursor gave %q", after)
		case ok && c != "" && (!isObjectID(after) || encodeCursor(after) != c):
			t.Fatalf("parseCursor(%q) = %q, which encodes as %q", c, after, encodeCursor(after))
		}
	})
}

func TestCursorRoundTrip(t *testing.T) {
	for _, id := range []string{"00000000-0000-4000-8000-000000000001", "ffffffff-ffff-4fff-bfff-ffffffffffff"} {
		if got, ok := parseCursor(encodeCursor(id)); !ok || got != id {
			t.Errorf("parseCursor(encodeCursor(%q)) = %q, %v", id, got, ok)
		}
	}
	if _, ok := parseCursor(encodeCursor("ABCDEF01-2345-4678-9ABC-DEF012345678")); ok {
		t.Error("an upper-case id is not an object id as stored")
	}
}
