package techpass

import (
	"encoding/json"
	"strings"
	"time"
)

// Group is a TechPass group as the Automation API returns it.
type Group struct {
	// ID is TechPass's identifier for the group (an Azure AD object id).
	ID string `json:"id"`
	// Name is the group's name inside its namespace; for groups managed by
	// this service it is the full name <TENANT>:<PROJECT>:<group>.
	Name string `json:"name"`
	// GRN is the namespace-qualified name, "<namespace in lower case>:<name>".
	GRN         string    `json:"grn"`
	Description string    `json:"description"`
	Created     time.Time `json:"created"`
}

// GroupList is the body of the published list-groups answer.
type GroupList struct {
	Groups []Group `json:"groups"`
}

// CreateGroupRequest is the (assumed) body of a create-group call.
type CreateGroupRequest struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// UpdateGroupRequest is the (assumed) body of an update-group call. The
// description is always sent, so an empty one clears it.
type UpdateGroupRequest struct {
	Description string `json:"description"`
}

// User is a TechPass user (assumed shape of GET /iam/users/{identifier}),
// and a member or owner as Get Group embeds them (published: display name,
// first and last name, accountType; assumed: id and email).
type User struct {
	// ID is the user's Azure AD object id (a UUID).
	ID string `json:"id"`
	// Email is the user's login e-mail.
	Email       string `json:"email"`
	DisplayName string `json:"displayName,omitempty"`
	FirstName   string `json:"firstName,omitempty"`
	LastName    string `json:"lastName,omitempty"`
	// AccountType is account:public_officer, account:vendor or
	// account:temp (published).
	AccountType string `json:"accountType,omitempty"`
}

// Name returns the user's display name, or else first and last name.
func (u User) Name() string {
	if u.DisplayName != "" {
		return u.DisplayName
	}
	return strings.TrimSpace(u.FirstName + " " + u.LastName)
}

// GroupDetail is the Get Group answer (published, RN Oct 2024): the group
// with its users (members) and owners embedded.
type GroupDetail struct {
	Group
	Users  []User `json:"users"`
	Owners []User `json:"owners"`
}

// MemberPage is one page of a group's members: the list-members answer
// (assumed shape), or what the client made of a Get Group answer.
type MemberPage struct {
	Members []User `json:"members"`
	// Next is the cursor of the next page; empty on the last page.
	Next string `json:"nextCursor,omitempty"`
	// Owners are the group's owners, valid when OwnersKnown (members read
	// through Get Group; the list-members route does not give them).
	Owners      []User `json:"-"`
	OwnersKnown bool   `json:"-"`
}

// AddMemberRequest is the (assumed) body of an add-member call.
type AddMemberRequest struct {
	// UserID is the object id of the user to add.
	UserID string `json:"userId"`
}

// ErrorBody is an Automation API error answer in either of its shapes: the
// one TechPass documents for routes on its gateway,
// {"error":{"code":14014,"message":"…","traceId":"…"}}, and AWS API
// Gateway's own {"message": "..."} for key and throttling errors.
type ErrorBody struct {
	Message string       `json:"message,omitempty"`
	Error   *ErrorDetail `json:"error,omitempty"`
}

// ErrorDetail is the "error" object of a TechPass error answer.
type ErrorDetail struct {
	// Code is TechPass's numeric error code (a number on the wire; a string
	// is tolerated).
	Code    json.RawMessage `json:"code,omitempty"`
	Message string          `json:"message,omitempty"`
	// TraceID identifies the request for TechPass support.
	TraceID string `json:"traceId,omitempty"`
}

// TokenResponse is the Azure AD v2 token endpoint's success answer.
type TokenResponse struct {
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	ExtExpiresIn int    `json:"ext_expires_in"`
	AccessToken  string `json:"access_token"`
}

// TokenErrorBody is the Azure AD v2 token endpoint's error answer.
type TokenErrorBody struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	ErrorCodes       []int  `json:"error_codes,omitempty"`
}

// GRN returns the namespace-qualified name TechPass gives a group:
// the namespace in lower case, a colon, and the group name.
func GRN(namespace, name string) string {
	return lowerASCII(namespace) + ":" + name
}

func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
