package tenants

import (
	"errors"
	"fmt"
)

// ErrRekeyed reports an UpdateTenant function that changed what records are
// stored under (see Store.UpdateTenant); the update writes nothing.
var ErrRekeyed = errors.New("an update may not rename or remove a record")

// ApplyUpdate is the part of Store.UpdateTenant every backend shares: it
// runs fn on t and projects (the stored state, read in the backend's
// transaction) and checks what fn left (see keysKept). An error, fn's or
// the check's, means the backend must write nothing.
func ApplyUpdate(name string, t *Tenant, projects *[]Project, fn func(*Tenant, *[]Project) error) error {
	before := make([]string, len(*projects))
	for i, p := range *projects {
		before[i] = p.Name
	}
	if err := fn(t, projects); err != nil {
		return err
	}
	return keysKept(name, before, *t, *projects)
}

// keysKept checks what an UpdateTenant function left: the tenant named name
// still, each project once, of this tenant, and every project named in
// before still there. Its error wraps ErrRekeyed.
func keysKept(name string, before []string, t Tenant, projects []Project) error {
	if t.Name != name {
		return fmt.Errorf("update tenant %s: renamed to %q: %w", name, t.Name, ErrRekeyed)
	}
	seen := make(map[string]bool, len(projects))
	for _, p := range projects {
		if p.Tenant != name {
			return fmt.Errorf("update tenant %s: project %s given tenant %q: %w", name, p.Name, p.Tenant, ErrRekeyed)
		}
		if seen[p.Name] {
			return fmt.Errorf("update tenant %s: project %s listed twice: %w", name, p.Name, ErrRekeyed)
		}
		seen[p.Name] = true
	}
	for _, n := range before {
		if !seen[n] {
			return fmt.Errorf("update tenant %s: project %s dropped: %w", name, n, ErrRekeyed)
		}
	}
	return nil
}
