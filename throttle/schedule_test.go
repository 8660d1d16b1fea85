package throttle_test

import (
	"math/rand/v2"
	"regexp"
	"testing"
	"time"

	"github.com/groupgate/groupgate/throttle"
)

func TestNextProject(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h := func(project string, notBefore time.Duration) throttle.Operation {
		op := throttle.Operation{ID: "op-" + project, Project: project}
		if notBefore != 0 {
			op.NotBefore = t0.Add(notBefore)
		}
		return op
	}
	tests := []struct {
		name     string
		heads    []throttle.Operation
		last     string
		want     string
		wantWake time.Duration
	}{
		{"empty", nil, "", "", 0},
		{"single", []throttle.Operation{h("A", 0)}, "", "A", 0},
		{"single again", []throttle.Operation{h("A", 0)}, "A", "A", 0},
		{"after A comes B", []throttle.Operation{h("A", 0), h("B", 0), h("C", 0)}, "A", "B", 0},
		{"after C wraps to A", []throttle.Operation{h("C", 0), h("A", 0), h("B", 0)}, "C", "A", 0},
		{"last gone: next in order", []throttle.Operation{h("A", 0), h("C", 0)}, "B", "C", 0},
		{"first turn starts at the first name", []throttle.Operation{h("B", 0), h("A", 0)}, "", "A", 0},
		{"skip a project waiting for a retry", []throttle.Operation{h("A", 0), h("B", 5*time.Second), h("C", 0)}, "A", "C", 0},
		{"due retry counts", []throttle.Operation{h("A", 0), h("B", -time.Second)}, "A", "B", 0},
		{"none due: wake at the earliest", []throttle.Operation{h("A", 3*time.Second), h("B", 2*time.Second)}, "", "", 2 * time.Second},
	}
	for _, tt := range tests {
		got, ok, wake := throttle.NextProject(tt.heads, tt.last, t0)
		if tt.want == "" {
			if ok {
				t.Errorf("%s: picked %s, want none", tt.name, got.Project)
			}
			if tt.wantWake != 0 && !wake.Equal(t0.Add(tt.wantWake)) {
				t.Errorf("%s: wake %v, want t0+%v", tt.name, wake, tt.wantWake)
			}
			continue
		}
		if !ok || got.Project != tt.want {
			t.Errorf("%s: picked %q (ok=%v), want %q", tt.name, got.Project, ok, tt.want)
		}
	}
}

// TestNextProjectIsFair replays a flood: project A has 200 operations, B
// has 5; B's fifth runs within 10 turns.
func TestNextProjectIsFair(t *testing.T) {
	pending := map[string]int{"A": 200, "B": 5}
	last, turns, bDone := "", 0, 0
	now := time.Now()
	for bDone < 5 {
		var heads []throttle.Operation
		for p, n := range pending {
			if n > 0 {
				heads = append(heads, throttle.Operation{Project: p})
			}
		}
		next, ok, _ := throttle.NextProject(heads, last, now)
		if !ok {
			t.Fatal("nothing picked")
		}
		pending[next.Project]--
		last = next.Project
		turns++
		if next.Project == "B" {
			bDone++
		}
	}
	if turns > 10 {
		t.Fatalf("B finished after %d turns, want <= 10", turns)
	}
}

func TestPosition(t *testing.T) {
	d := throttle.Depth{Total: 212, Projects: map[string]int{"A": 200, "B": 5, "C": 7}}
	for _, tt := range []struct {
		ahead   int
		project string
		want    int
	}{
		{0, "B", 1 + 1 + 1},     // next in B: one turn each for A and C at most
		{4, "B", 5 + 5 + 5},     // B's fifth: up to 5 turns of A and of C
		{0, "A", 1 + 1 + 1},     //
		{199, "A", 200 + 5 + 7}, // A's last: behind everything
		{0, "D", 1 + 1 + 1 + 1}, // a new project's first
	} {
		if got := throttle.Position(tt.ahead, tt.project, d); got != tt.want {
			t.Errorf("Position(%d, %s) = %d, want %d", tt.ahead, tt.project, got, tt.want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	lim := throttle.Limits{Tenant: 100, Project: 10}
	for _, tt := range []struct {
		name  string
		depth throttle.Depth
		want  time.Duration
	}{
		{"room", throttle.Depth{Total: 5, Projects: map[string]int{"A": 5}}, time.Second},
		{"tenant full by 1", throttle.Depth{Total: 100, Projects: map[string]int{"A": 5, "B": 95}}, time.Second},
		{"tenant over by 9", throttle.Depth{Total: 108, Projects: map[string]int{"A": 5, "B": 103}}, 9 * time.Second},
		{"project full, 3 projects waiting", throttle.Depth{Total: 30, Projects: map[string]int{"A": 10, "B": 10, "C": 10}}, 3 * time.Second},
	} {
		if got := throttle.RetryAfter(tt.depth, lim, "A", time.Second); got != tt.want {
			t.Errorf("%s: RetryAfter = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestNewIDOrderedAndUnique(t *testing.T) {
	seen := map[string]bool{}
	prev := ""
	for range 2000 {
		id := throttle.NewID()
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
			a := throttle.NewIDAt(time.UnixMilli(int64(ms)))
			b := throttle.NewIDAt(time.UnixMilli(int64(ms + 1)))
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
		a, b := throttle.NewIDAt(time.UnixMilli(x)), throttle.NewIDAt(time.UnixMilli(y))
		if x < y && a >= b || x > y && a <= b {
			t.Fatalf("ids at %d ms and %d ms: %s, %s out of order", x, y, a, b)
		}
	}
	if steps != 9*31+7 {
		t.Fatalf("checked %d steps", steps)
	}
}
