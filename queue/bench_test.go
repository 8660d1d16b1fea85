package queue_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/groupgate/groupgate/queue"
)

// BenchmarkNextProject measures the round-robin pick among the heads of a
// tenant's projects, as the dispatcher makes it before every operation.
func BenchmarkNextProject(b *testing.B) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, projects := range []int{2, 64} {
		b.Run(fmt.Sprintf("projects=%d", projects), func(b *testing.B) {
			heads := make([]queue.Operation, projects)
			for i := range heads {
				heads[i] = queue.Operation{ID: fmt.Sprintf("op-%d", i), Project: fmt.Sprintf("P%03d", (i*37)%projects)}
			}
			last := ""
			for b.Loop() {
				op, ok, _ := queue.NextProject(heads, last, now)
				if !ok {
					b.Fatal("no project picked")
				}
				last = op.Project
			}
		})
	}
}
