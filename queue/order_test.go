package queue_test

import (
	"testing"
	"time"

	"github.com/groupgate/groupgate/queue"
)

func TestNextProject(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h := func(project string, notBefore time.Duration) queue.Operation {
		op := queue.Operation{ID: "op-" + project, Project: project}
		if notBefore != 0 {
			op.NotBefore = t0.Add(notBefore)
		}
		return op
	}
	tests := []struct {
		name     string
		heads    []queue.Operation
		last     string
		want     string
		wantWake time.Duration
	}{
		{"empty", nil, "", "", 0},
		{"single", []queue.Operation{h("A", 0)}, "", "A", 0},
		{"single again", []queue.Operation{h("A", 0)}, "A", "A", 0},
		{"after A comes B", []queue.Operation{h("A", 0), h("B", 0), h("C", 0)}, "A", "B", 0},
		{"after C wraps to A", []queue.Operation{h("C", 0), h("A", 0), h("B", 0)}, "C", "A", 0},
		{"last gone: next in order", []queue.Operation{h("A", 0), h("C", 0)}, "B", "C", 0},
		{"first turn starts at the first name", []queue.Operation{h("B", 0), h("A", 0)}, "", "A", 0},
		{"skip a project waiting for a retry", []queue.Operation{h("A", 0), h("B", 5*time.Second), h("C", 0)}, "A", "C", 0},
		{"due retry counts", []queue.Operation{h("A", 0), h("B", -time.Second)}, "A", "B", 0},
		{"none due: wake at the earliest", []queue.Operation{h("A", 3*time.Second), h("B", 2*time.Second)}, "", "", 2 * time.Second},
	}
	for _, tt := range tests {
		got, ok, wake := queue.NextProject(tt.heads, tt.last, t0)
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
		var heads []queue.Operation
		for p, n := range pending {
			if n > 0 {
				heads = append(heads, queue.Operation{Project: p})
			}
		}
		next, ok, _ := queue.NextProject(heads, last, now)
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
	d := queue.Depth{Total: 212, Projects: map[string]int{"A": 200, "B": 5, "C": 7}}
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
		if got := queue.Position(tt.ahead, tt.project, d); got != tt.want {
			t.Errorf("Position(%d, %s) = %d, want %d", tt.ahead, tt.project, got, tt.want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	lim := queue.Limits{Tenant: 100, Project: 10}
	for _, tt := range []struct {
		name  string
		depth queue.Depth
		want  time.Duration
	}{
		{"room", queue.Depth{Total: 5, Projects: map[string]int{"A": 5}}, time.Second},
		{"tenant full by 1", queue.Depth{Total: 100, Projects: map[string]int{"A": 5, "B": 95}}, time.Second},
		{"tenant over by 9", queue.Depth{Total: 108, Projects: map[string]int{"A": 5, "B": 103}}, 9 * time.Second},
		{"project full, 3 projects waiting", queue.Depth{Total: 30, Projects: map[string]int{"A": 10, "B": 10, "C": 10}}, 3 * time.Second},
	} {
		if got := queue.RetryAfter(tt.depth, lim, "A", time.Second); got != tt.want {
			t.Errorf("%s: RetryAfter = %v, want %v", tt.name, got, tt.want)
		}
	}
}
