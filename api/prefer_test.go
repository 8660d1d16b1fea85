package api

import (
	"testing"
	"time"
)

func TestPreferWait(t *testing.T) {
	str := func(s string) *string { return &s }
	for _, tt := range []struct {
		header *string
		want   time.Duration
	}{
		{nil, 0},
		{str(""), 0},
		{str("wait=5"), 5 * time.Second},
		{str("WAIT = 7"), 7 * time.Second},
		{str(`wait="3"`), 3 * time.Second},
		{str("respond-async, wait=10"), 10 * time.Second},
		{str("wait=10;foo=bar"), 10 * time.Second},
		{str("wait=1000"), 30 * time.Second}, // capped
		{str("wait=0"), 0},
		{str("wait=-1"), 0},
		{str("wait=abc"), 0},
		{str("wait=99999999999999999999"), 0},
		{str("return=minimal"), 0},
	} {
		if got := preferWait(tt.header, 30*time.Second); got != tt.want {
			h := "<nil>"
			if tt.header != nil {
				h = *tt.header
			}
			t.Errorf("preferWait(%q) = %v, want %v", h, got, tt.want)
		}
	}
	if got := preferWait(str("wait=5"), 0); got != 0 {
		t.Errorf("waiting disabled by config: %v", got)
	}
}

func FuzzPreferWait(f *testing.F) {
	for _, s := range []string{"wait=5", "wait=", "=", ",,,", `wait="1`, "wait=1;x", "WAIT=18446744073709551616"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := preferWait(&s, 30*time.Second)
		if got < 0 || got > 30*time.Second || got%time.Second != 0 {
			t.Fatalf("preferWait(%q) = %v", s, got)
		}
	})
}
