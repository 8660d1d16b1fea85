package groups

import (
	"encoding/json"
	"fmt"
	"time"
)

// This file holds the stored results of operations, as the API reads them.

// Result is the stored output of a successful group operation.
type Result struct {
	FullName    string    `json:"fullName"`
	Description string    `json:"description"`
	UpstreamID  string    `json:"upstreamId,omitempty"`
	CreatedAt   time.Time `json:"createdAt"`
}

// DecodeResult reads an operation's stored Result; ok is false when there is
// none.
func DecodeResult(b []byte) (r Result, ok bool, err error) {
	return decodeStored[Result](b, "group result")
}

// decodeStored reads a stored result b of type T; ok is false when b is
// empty.
func decodeStored[T any](b []byte, what string) (r T, ok bool, err error) {
	if len(b) == 0 {
		return r, false, nil
	}
	if err := json.Unmarshal(b, &r); err != nil {
		var zero T
		return zero, false, fmt.Errorf("decode %s: %w", what, err)
	}
	return r, true, nil
}

// MembersResult is the stored output of a member change.
type MembersResult struct {
	FullName string `json:"fullName"`
	// Added and Removed are the users whose membership changed (or that
	// TechPass reported as already so).
	Added   []UserResult `json:"added"`
	Removed []UserResult `json:"removed"`
	// Unchanged are the identifiers that needed no change.
	Unchanged []string `json:"unchanged"`
}

// UserResult is a user in a MembersResult.
type UserResult struct {
	ID          string `json:"id"`
	Email       string `json:"email"`
	DisplayName string `json:"displayName,omitempty"`
}

// DecodeMembersResult reads a group.members operation's stored result; ok is
// false when there is none.
func DecodeMembersResult(b []byte) (r MembersResult, ok bool, err error) {
	return decodeStored[MembersResult](b, "members result")
}
