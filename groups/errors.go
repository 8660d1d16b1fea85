package groups

import "errors"

// Errors returned by this package, wrapped with context. The HTTP edge maps
// them to status codes in one place.
var (
	// ErrInvalid marks input that breaks a naming or content rule; the error
	// is a *ValidationError listing the fields.
	ErrInvalid = errors.New("invalid input")
	// ErrNotFound means the group is not in the project.
	ErrNotFound = errors.New("group not found")
	// ErrExists means a group of that name (case-insensitively) exists or is
	// being created in the project.
	ErrExists = errors.New("group already exists")
	// ErrLimit means the tenant's namespace group limit would be exceeded.
	ErrLimit = errors.New("namespace group limit reached")
	// ErrQuota means the project's group quota would be exceeded.
	ErrQuota = errors.New("project group quota reached")
	// ErrPending means another operation on the group is queued or running.
	ErrPending = errors.New("another operation on the group is pending")
	// ErrStale means the mirror changed between a read and the write based
	// on it; the service works the write out again.
	ErrStale = errors.New("the mirror changed meanwhile")
	// ErrRevision means an If-Match precondition failed: the group changed
	// since the caller read it.
	ErrRevision = errors.New("the group has changed")
)
