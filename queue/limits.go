package queue

import "time"

// Depth is how many operations of a tenant are pending (queued or running),
// in all and per project.
type Depth struct {
	Total    int
	Projects map[string]int
}

// Limits bound a tenant's queue. A zero field means no limit.
type Limits struct {
	// Tenant is the most operations the tenant may have pending.
	Tenant int
	// Project is the most operations one project may have pending.
	Project int
}

// RetryAfter estimates when a full queue will have room: the tenant's
// queue drains one operation per interval; a project's queue drains one
// per round of the projects waiting.
func RetryAfter(depth Depth, limits Limits, project string, interval time.Duration) time.Duration {
	var wait time.Duration
	if limits.Tenant > 0 && depth.Total >= limits.Tenant {
		wait = time.Duration(depth.Total-limits.Tenant+1) * interval
	}
	if n := depth.Projects[project]; limits.Project > 0 && n >= limits.Project {
		rounds := n - limits.Project + 1
		waiting := max(len(depth.Projects), 1)
		wait = max(wait, time.Duration(rounds*waiting)*interval)
	}
	return max(wait, time.Second)
}
