package queue

import (
	"sort"
	"time"
)

// NextProject picks whose operation runs next: the first project after last
// (in name order, wrapping around) whose head is due at now. Serving the
// projects with work in turn, one operation each, is deficit round robin
// with equal costs: a project that floods the queue waits its turn like the
// others. ok is false when no head is due; wake is then the earliest time
// one will be (zero if heads is empty).
func NextProject(heads []Operation, last string, now time.Time) (next Operation, ok bool, wake time.Time) {
	sorted := make([]Operation, len(heads))
	copy(sorted, heads)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Project < sorted[j].Project })
	start := sort.Search(len(sorted), func(i int) bool { return sorted[i].Project > last })
	for i := range sorted {
		h := sorted[(start+i)%len(sorted)]
		if !h.NotBefore.After(now) {
			return h, true, time.Time{}
		}
		if wake.IsZero() || h.NotBefore.Before(wake) {
			wake = h.NotBefore
		}
	}
	return Operation{}, false, wake
}

// Position estimates the place (1 = next) of an operation that has ahead
// operations of its own project before it, in a tenant whose pending
// operations are depth: under round robin every other project gets at most
// one turn per turn of this project. It ignores retry waits and projects
// that join later.
func Position(ahead int, project string, depth Depth) int {
	pos := ahead + 1
	for p, n := range depth.Projects {
		if p != project {
			pos += min(n, ahead+1)
		}
	}
	return pos
}
