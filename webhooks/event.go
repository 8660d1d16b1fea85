package webhooks

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/groupgate/groupgate/groups"
)

// Kind is what an event means to the gateway.
type Kind string

// The kinds of event.
const (
	// UserGone: user-deleted, or a user-terminated event.
	UserGone Kind = "user-gone"
	// UserUpdated: user-updated (profile, e-mail or UPN change).
	UserUpdated Kind = "user-updated"
	// CredentialsExpiring: application-credentials-expiring.
	CredentialsExpiring Kind = "application-credentials-expiring"
	// ApplicationDeleted: application-deleted.
	ApplicationDeleted Kind = "application-deleted"
	// Other: any other event (user-invited, or one not known yet); it is
	// acknowledged and logged.
	Other Kind = "other"
)

// goneTypes are the event types that mean the user is gone: user-deleted and
// the user-terminated events (an explicit list: "user-unterminated" is not
// one).
var goneTypes = []string{"user-deleted", "user-terminated", "user-account-terminated"}

// ErrMalformed is returned (wrapped) by Parse for a body that is not a JSON
// object naming an event.
var ErrMalformed = errors.New("webhooks: malformed delivery")

// Event is what a delivery says, as far as the gateway reads it.
type Event struct {
	// Type is the event type as sent, lower-cased (clipped to 64 bytes).
	Type string
	Kind Kind
	// User is the user concerned, for user events: ID (lower case) and/or
	// Email; the zero User if the delivery names none usably.
	User groups.User
	// Digest identifies the delivery: SHA-256 of the type and the raw body.
	Digest [32]byte
}

// Limits on what is read from a delivery.
const (
	maxTypeLen  = 64
	maxEmailLen = 254
	maxNameLen  = 256
	maxDepth    = 8
)

// Parse reads a delivery's body. It returns an error wrapping ErrMalformed
// when the body is not a JSON object with a string event type; unusable
// user fields leave Event.User empty (the caller ignores such an event).
func Parse(body []byte) (Event, error) {
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil || doc == nil {
		return Event{}, fmt.Errorf("%w: not a JSON object", ErrMalformed)
	}
	if dec.More() {
		return Event{}, fmt.Errorf("%w: trailing data after the JSON object", ErrMalformed)
	}
	if depth(doc, 0) > maxDepth {
		return Event{}, fmt.Errorf("%w: nested too deeply", ErrMalformed)
	}
	typ := strings.ToLower(strings.TrimSpace(firstString(doc, "event", "type", "eventType", "event_type")))
	if typ == "" {
		return Event{}, fmt.Errorf("%w: no event type", ErrMalformed)
	}
	if len(typ) > maxTypeLen || !utf8.ValidString(typ) || strings.ContainsFunc(typ, unicode.IsControl) {
		return Event{}, fmt.Errorf("%w: event type is not a short printable string", ErrMalformed)
	}
	ev := Event{Type: typ, Digest: digest(typ, body)}
	switch {
	case slices.Contains(goneTypes, typ):
		ev.Kind = UserGone
	case typ == "user-updated":
		ev.Kind = UserUpdated
	case typ == "application-credentials-expiring":
		ev.Kind = CredentialsExpiring
	case typ == "application-deleted":
		ev.Kind = ApplicationDeleted
	default:
		ev.Kind = Other
	}
	if ev.Kind == UserGone || ev.Kind == UserUpdated {
		ev.User = readUser(doc)
	}
	return ev, nil
}

func digest(typ string, body []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(typ))
	h.Write([]byte{0})
	h.Write(body)
	var d [32]byte
	h.Sum(d[:0])
	return d
}

func depth(v any, d int) int {
	if d > maxDepth {
		return d
	}
	best := d
	switch x := v.(type) {
	case map[string]any:
		for _, e := range x {
			best = max(best, depth(e, d+1))
		}
	case []any:
		for _, e := range x {
			best = max(best, depth(e, d+1))
		}
	}
	return best
}

// Where readUser looks for a user's fields.
var (
	// nestedIDKeys name the object id under "user" or "data"; at the top
	// level only topIDKeys do, since a top-level "id" is likely the event's.
	nestedIDKeys = []string{"userId", "objectId", "id", "oid"}
	topIDKeys    = []string{"userId", "objectId"}
	// emailKeys in order of preference: a user-updated event's new e-mail
	// or UPN wins over the one it replaces.
	emailKeys = []string{"newEmail", "newUserPrincipalName", "email", "mail", "userPrincipalName", "upn"}
)

// readUser finds the user's fields under "user" or "data" (and
// "data.user"), then at the top level: the id and the e-mail are each
// taken from the first place that has a valid one, the display name from
// the place the id or e-mail came from. Two places naming different ids
// make the delivery name no usable user. Values that fail their checks
// are dropped.
func readUser(doc map[string]any) groups.User {
	type place struct {
		m      map[string]any
		idKeys []string
	}
	var places []place
	for _, k := range []string{"user", "data"} {
		if m, ok := doc[k].(map[string]any); ok {
			places = append(places, place{m, nestedIDKeys})
			if u, ok := m["user"].(map[string]any); ok {
				places = append(places, place{u, nestedIDKeys})
			}
		}
	}
	places = append(places, place{doc, topIDKeys})
	var u groups.User
	for _, p := range places {
		id := ""
		for _, k := range p.idKeys {
			if v := strings.ToLower(strings.TrimSpace(firstString(p.m, k))); v != "" {
				id = v
				break
			}
		}
		if !groups.IsObjectID(id) {
			id = ""
		}
		email := ""
		for _, k := range emailKeys {
			if v := strings.TrimSpace(firstString(p.m, k)); validEmail(v) {
				email = v
				break
			}
		}
		switch {
		case id != "" && u.ID != "" && id != u.ID:
			return groups.User{} // conflicting ids: which user is meant?
		case id == "" && email == "":
			continue
		}
		if u.ID == "" && u.Email == "" {
			name := strings.TrimSpace(firstString(p.m, "displayName", "name"))
			if utf8.RuneCountInString(name) <= maxNameLen && utf8.ValidString(name) && !strings.ContainsFunc(name, unicode.IsControl) {
				u.DisplayName = name
			}
		}
		u.ID = cmp.Or(u.ID, id)
		u.Email = cmp.Or(u.Email, email)
	}
	return u
}

// firstString returns the first of keys (compared case-insensitively)
// holding a string in m.
func firstString(m map[string]any, keys ...string) string {
	for _, k := range keys {
		if s, ok := m[k].(string); ok {
			return s
		}
	}
	for mk, v := range m {
		for _, k := range keys {
			if strings.EqualFold(mk, k) {
				if s, ok := v.(string); ok {
					return s
				}
			}
		}
	}
	return ""
}

// validEmail reports whether s is an e-mail address the API would accept
// (groups.IsEmail).
func validEmail(s string) bool { return s != "" && len(s) <= maxEmailLen && groups.IsEmail(s) }
