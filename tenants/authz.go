package tenants

import (
	"fmt"
	"slices"
)

// RequireProject checks that p may use scope in project of tenant (both upper
// case): a project credential of that project with the scope, or a
// tenant-admin of the tenant. Operators manage tenants, not their groups.
func RequireProject(p Principal, tenant, project string, scope Scope) error {
	switch p.Role {
	case RoleProject:
		if p.Tenant != tenant || p.Project != project {
			return fmt.Errorf("%w: %s belongs to %s:%s", ErrForbidden, p.Actor(), p.Tenant, p.Project)
		}
		if !slices.Contains(p.Scopes, scope) {
			return fmt.Errorf("%w: %s lacks scope %s", ErrForbidden, p.Actor(), scope)
		}
		return nil
	case RoleTenantAdmin:
		if p.Tenant != tenant {
			return fmt.Errorf("%w: %s administers %s", ErrForbidden, p.Actor(), p.Tenant)
		}
		return nil
	default:
		return fmt.Errorf("%w: role %q does not act on groups", ErrForbidden, p.Role)
	}
}

// RequireTenantAdmin checks that p administers tenant: its tenant-admin, or
// an operator.
func RequireTenantAdmin(p Principal, tenant string) error {
	if p.Role == RoleOperator || (p.Role == RoleTenantAdmin && p.Tenant == tenant) {
		return nil
	}
	return fmt.Errorf("%w: %s does not administer %s", ErrForbidden, p.Actor(), tenant)
}

// RequireOperator checks that p is an operator.
func RequireOperator(p Principal) error {
	if p.Role == RoleOperator {
		return nil
	}
	return fmt.Errorf("%w: only operators may do this", ErrForbidden)
}

// RequireIssue checks that p may issue or revoke k: operators any key,
// tenant-admins the tenant-admin and project keys of their tenant.
func RequireIssue(p Principal, k Key) error {
	switch {
	case p.Role == RoleOperator:
		return nil
	case p.Role == RoleTenantAdmin && k.Role != RoleOperator && k.Tenant == p.Tenant:
		return nil
	default:
		return fmt.Errorf("%w: %s may not manage %s keys of %q", ErrForbidden, p.Actor(), k.Role, k.Tenant)
	}
}
