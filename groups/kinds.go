package groups

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-playground/validator/v10"

	"github.com/groupgate/groupgate/queue"
)

// Operation kinds carried out by the Executor.
const (
	KindCreate  = "group.create"
	KindDelete  = "group.delete"
	KindUpdate  = "group.update"
	KindMembers = "group.members"
)

// createPayload is the stored input of a group.create operation.
type createPayload struct {
	FullName    string `json:"fullName"`
	Description string `json:"description"`
}

// deletePayload is the stored input of a group.delete operation.
type deletePayload struct {
	FullName   string `json:"fullName"`
	UpstreamID string `json:"upstreamId,omitempty"`
}

// updatePayload is the stored input of a group.update operation.
type updatePayload struct {
	FullName    string `json:"fullName"`
	Description string `json:"description"`
	// Previous lets a failed update restore the description if no later
	// update was queued meanwhile.
	Previous string `json:"previous"`
}

// membersPayload is the stored input of a group.members operation.
type membersPayload struct {
	FullName string `json:"fullName"`
	// Add and Remove are normalized identifiers still to be applied.
	Add    []string `json:"add,omitempty"`
	Remove []string `json:"remove,omitempty"`
	// Unchanged are identifiers the mirror showed needed nothing when the
	// operation was queued.
	Unchanged []string `json:"unchanged,omitempty"`
}

// payload is the typed input of one operation kind, stored as the
// operation's Payload. Each kind has one payload type (createPayload,
// deletePayload, updatePayload, membersPayload); the Service encodes it on
// enqueue (newOperation) and the Executor decodes it once before carrying
// the operation out (decodeOperation).
//
// The JSON shape of a payload type is what the store keeps: operations
// queued by an earlier version are decoded by this one, so a field may be
// added but never renamed, retyped or removed (kinds_test.go holds the
// bytes an earlier version stored).
type payload interface {
	// kind is the operation kind the payload is the input of.
	kind() string
	// fullName is the full name of the group the operation acts on.
	fullName() string
	// undo returns the effects that revert the mirror change op made when
	// it was queued (see Undo); name is op's target.
	undo(op queue.Operation, name Name, at time.Time) []Effect
}

func (createPayload) kind() string  { return KindCreate }
func (deletePayload) kind() string  { return KindDelete }
func (updatePayload) kind() string  { return KindUpdate }
func (membersPayload) kind() string { return KindMembers }

func (p createPayload) fullName() string  { return p.FullName }
func (p deletePayload) fullName() string  { return p.FullName }
func (p updatePayload) fullName() string  { return p.FullName }
func (p membersPayload) fullName() string { return p.FullName }

// A create's reservation is released.
func (createPayload) undo(_ queue.Operation, n Name, _ time.Time) []Effect {
	return []Effect{CreateFailed{Name: n}}
}

// A deleting group is active again.
func (deletePayload) undo(_ queue.Operation, n Name, at time.Time) []Effect {
	return []Effect{DeleteFailed{Name: n, At: at}}
}

// The description is restored, unless a later update was queued.
func (p updatePayload) undo(op queue.Operation, n Name, at time.Time) []Effect {
	return []Effect{UpdateFailed{Name: n, Operation: op.ID, Previous: p.Previous, At: at}}
}

// The change's steps are in the mirror already; only its pending count is
// released.
func (membersPayload) undo(op queue.Operation, n Name, _ time.Time) []Effect {
	return []Effect{MembersSettled{Name: n, QueuedAt: op.CreatedAt}}
}

// Errors of decodePayload and decodeOperation, wrapped with the detail.
var (
	// errUnknownKind means no payload type is registered for the kind.
	errUnknownKind = errors.New("unknown operation kind")
	// errCorrupt means the stored payload does not decode as its kind's
	// type, or names no valid group.
	errCorrupt = errors.New("corrupt operation payload")
)

// decodePayload is the registry of operation kinds: it decodes b as the
// payload type of kind. For a payload that does not decode it returns the
// kind's zero payload with an error wrapping errCorrupt, and nil with an
// error wrapping errUnknownKind for a kind with no payload type.
func decodePayload(kind string, b []byte) (payload, error) {
	switch kind {
	case KindCreate:
		return decodeAs[createPayload](b)
	case KindDelete:
		return decodeAs[deletePayload](b)
	case KindUpdate:
		return decodeAs[updatePayload](b)
	case KindMembers:
		return decodeAs[membersPayload](b)
	}
	return nil, fmt.Errorf("%w %q", errUnknownKind, kind)
}

func decodeAs[P payload](b []byte) (payload, error) {
	var p P
	if err := json.Unmarshal(b, &p); err != nil {
		var zero P
		return zero, fmt.Errorf("%w: %s: %w", errCorrupt, p.kind(), err)
	}
	return p, nil
}

// encodePayload returns the stored form of p.
func encodePayload(p payload) ([]byte, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode %s payload: %w", p.kind(), err)
	}
	return b, nil
}

// decodeOperation decodes op's payload by its kind and checks the group
// name it carries, which was valid when the operation was queued. It
// returns an error wrapping errUnknownKind or errCorrupt otherwise.
func decodeOperation(v *validator.Validate, op queue.Operation) (Name, payload, error) {
	p, err := decodePayload(op.Kind, op.Payload)
	if err != nil {
		return Name{}, nil, err
	}
	name, err := ParseFullName(v, p.fullName())
	if err != nil {
		return Name{}, nil, fmt.Errorf("%w: %s: the group name: %w", errCorrupt, op.Kind, err)
	}
	return name, p, nil
}

// Undo returns the effects that revert the mirror change an operation made
// when it was queued, as its kind's payload type says (kinds.go): a
// create's reservation is released, a deleting group is active again, an
// update's description is restored; a member change stops counting as
// pending. They are committed when an operation is cancelled or given up.
// An operation of a kind this version does not know made no change it
// knows of: Undo returns nothing for it. A payload that does not decode
// is undone as its kind's zero payload (an update then restores the
// confirmed description, if TechPass confirmed one).
func Undo(op queue.Operation, at time.Time) []Effect {
	p, _ := decodePayload(op.Kind, op.Payload) // nil only for an unknown kind
	if p == nil {
		return nil
	}
	return p.undo(op, targetName(op), at)
}

// targetName splits an operation's stored full name without validating it
// (it was validated when the operation was queued).
func targetName(op queue.Operation) Name {
	parts := strings.SplitN(op.Target, ":", 3)
	for len(parts) < 3 {
		parts = append(parts, "")
	}
	return Name{Tenant: parts[0], Project: parts[1], Group: parts[2]}
}
