package techpasssim

import (
	"errors"
	"fmt"
	"maps"
	"net/mail"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/groupgate/groupgate/techpass"
)

// Limits of the user directory; TechPass publishes none, so these are
// assumed (Azure AD's own limits).
const (
	// MaxEmailLength bounds a user's e-mail, in bytes (RFC 5321).
	MaxEmailLength = 254
	// MaxDisplayNameLength bounds a user's display name, in characters.
	MaxDisplayNameLength = 256
)

// directory is the simulator's user directory. TechPass users belong to the
// whole of TechPass, not to a namespace, so there is one per Simulator.
// Guarded by Simulator.mu.
type directory struct {
	byID    map[string]techpass.User // by object id, lower case
	byEmail map[string]string        // lower-cased e-mail to object id
}

func newDirectory() directory {
	return directory{byID: make(map[string]techpass.User), byEmail: make(map[string]string)}
}

// add validates u, gives it a random object id if it has none, and stores
// it. It returns the stored user, or an error wrapping ErrInvalidUser or
// ErrUserExists.
func (d directory) add(u techpass.User) (techpass.User, error) {
	if u.ID == "" {
		u.ID = newObjectID()
	}
	u.ID = strings.ToLower(u.ID)
	if err := validateUser(u); err != nil {
		return techpass.User{}, err
	}
	if _, ok := d.byID[u.ID]; ok {
		return techpass.User{}, fmt.Errorf("%w: id %q", ErrUserExists, u.ID)
	}
	email := strings.ToLower(u.Email)
	if _, ok := d.byEmail[email]; ok {
		return techpass.User{}, fmt.Errorf("%w: e-mail %q", ErrUserExists, u.Email)
	}
	d.byID[u.ID] = u
	d.byEmail[email] = u.ID
	return u, nil
}

// lookup finds a user by object id (exactly) or by e-mail (in any case).
func (d directory) lookup(identifier string) (techpass.User, bool) {
	if u, ok := d.byID[identifier]; ok {
		return u, true
	}
	u, ok := d.byID[d.byEmail[strings.ToLower(identifier)]]
	return u, ok
}

// sorted returns the users with the ids given, sorted by e-mail; ids the
// directory does not know are skipped.
func (d directory) sorted(ids []string) []techpass.User {
	out := make([]techpass.User, 0, len(ids))
	for _, id := range ids {
		if u, ok := d.byID[id]; ok {
			out = append(out, u)
		}
	}
	slices.SortFunc(out, func(a, b techpass.User) int {
		return strings.Compare(strings.ToLower(a.Email), strings.ToLower(b.Email))
	})
	return out
}

// validateUser reports every problem with u at once, wrapped in
// ErrInvalidUser.
func validateUser(u techpass.User) error {
	var errs []error
	if !isObjectID(u.ID) {
		errs = append(errs, fmt.Errorf("id %q is not a UUID", u.ID))
	}
	if !validEmail(u.Email) {
		errs = append(errs, fmt.Errorf("e-mail %q is not a plain address of at most %d bytes", u.Email, MaxEmailLength))
	}
	if utf8.RuneCountInString(u.DisplayName) > MaxDisplayNameLength || !utf8.ValidString(u.DisplayName) ||
		strings.ContainsFunc(u.DisplayName, unicode.IsControl) {
		errs = append(errs, fmt.Errorf("display name must be valid text of at most %d characters without control characters", MaxDisplayNameLength))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalidUser, errors.Join(errs...))
	}
	return nil
}

// validEmail reports whether s is a bare address (no display name, no
// angle brackets) with a local part and a domain.
func validEmail(s string) bool {
	if s == "" || len(s) > MaxEmailLength {
		return false
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return false
	}
	local, domain, ok := strings.Cut(s, "@")
	return ok && local != "" && domain != "" && !strings.ContainsAny(domain, "@[]")
}

// isObjectID reports whether s is a UUID in canonical lower-case form, the
// form Azure AD gives object ids.
func isObjectID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := range len(s) {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
	}
	return true
}

// AddUser adds u to the user directory, which all namespaces share, as
// TechPass's user base is one. An empty u.ID gets a random object id; a
// given one must be a UUID and is stored in lower case. The e-mail must be
// a plain address, unique case-insensitively. It returns the stored user,
// or an error wrapping ErrInvalidUser or ErrUserExists.
func (s *Simulator) AddUser(u techpass.User) (techpass.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.users.add(u)
}

// Users returns every user of the directory sorted by e-mail (a non-nil,
// possibly empty slice).
func (s *Simulator) Users() []techpass.User {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.users.sorted(slices.Collect(maps.Keys(s.users.byID)))
}

// DemoUsers returns n deterministic users for tests and demos: user i (from
// 1) has object id 00000000-0000-4000-8000-<i in 12 digits>, e-mail
// user<i in 3 digits>@example.gov.sg and display name "User <i in 3
// digits>". Every call returns the same users.
func DemoUsers(n int) []techpass.User {
	out := make([]techpass.User, 0, max(n, 0))
	for i := 1; i <= n; i++ {
		out = append(out, techpass.User{
			ID:          fmt.Sprintf("00000000-0000-4000-8000-%012d", i),
			Email:       fmt.Sprintf("user%03d@example.gov.sg", i),
			DisplayName: fmt.Sprintf("User %03d", i),
		})
	}
	return out
}
