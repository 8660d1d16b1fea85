package queue_test

import (
	"math/rand/v2"
	"regexp"
	"testing"
	"time"

	"github.com/groupgate/groupgate/queue"
)

func TestNewIDOrderedAndUnique(t *testing.T) {
	seen := map[string]bool{}
	prev := ""
	for range 2000 {
		id := queue.NewID()
		if !idPattern.MatchString(id) || seen[id] {
			t.Fatalf("bad or repeated id %q", id)
		}
		seen[id] = true
		// The millisecond prefix (first 9 characters cover 45 of its 48
		// bits) never goes backwards.
		if prev != "" && id[3:12] < prev[3:12] {
			t.Fatalf("ids went back in time: %s after %s", id, prev)
		}
		prev = id
	}
}

// idPattern is what openapi.yaml accepts for an operation id made now.
var idPattern = regexp.MustCompile(`^op_[0-9a-v]{26}$`)

// TestNewIDAtSortsInTimeOrder steps the clock by one millisecond across
// every value boundary of every character the 48-bit timestamp occupies
// (the 10th holds its last 3 bits) and checks that string order is time
// order at each step. Standard base32, whose "2"-"7" stand for values above
// "z", failed this at the step from 25 to 26 of each character.
func TestNewIDAtSortsInTimeOrder(t *testing.T) {
	steps := 0
	for pos := range 10 {
		shift, width := 43-5*pos, 5
		if pos == 9 {
			shift, width = 0, 3
		}
		for v := uint64(0); v < 1<<width-1; v++ {
			ms := v<<shift | (1<<shift - 1)
			a := queue.NewIDAt(time.UnixMilli(int64(ms)))
			b := queue.NewIDAt(time.UnixMilli(int64(ms + 1)))
			if !idPattern.MatchString(a) || !idPattern.MatchString(b) {
				t.Fatalf("bad ids %q, %q", a, b)
			}
			if a >= b {
				t.Fatalf("character %d, %d to %d: id at %d ms %s sorts after id at %d ms %s", pos, v, v+1, ms, a, ms+1, b)
			}
			steps++
		}
	}
	// Whole-millisecond order holds between any two instants, too: a
	// random sample of pairs.
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		x, y := r.Int64N(1<<48), r.Int64N(1<<48)
		a, b := queue.NewIDAt(time.UnixMilli(x)), queue.NewIDAt(time.UnixMilli(y))
		if x < y && a >= b || x > y && a <= b {
			t.Fatalf("ids at %d ms and %d ms: %s, %s out of order", x, y, a, b)
		}
	}
	if steps != 9*31+7 {
		t.Fatalf("checked %d steps", steps)
	}
}
