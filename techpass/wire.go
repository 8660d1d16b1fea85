package techpass

import "time"

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

// User is a TechPass user (assumed shape of GET /iam/users/{identifier}).
type User struct {
	// ID is the user's Azure AD object id (a UUID).
	ID string `json:"id"`
	// Email is the user's login e-mail.
	Email       string `json:"email"`
	DisplayName string `json:"displayName,omitempty"`
}

// MemberPage is one page of a group's members (assumed shape of the
// list-members answer).
type MemberPage struct {
	Members []User `json:"members"`
	// Next is the cursor of the next page; empty on the last page.
	Next string `json:"nextCursor,omitempty"`
}

// AddMemberRequest is the (assumed) body of an add-member call.
type AddMemberRequest struct {
	// UserID is the object id of the user to add.
	UserID string `json:"userId"`
}

// ErrorBody is the (assumed) shape of an Automation API error answer; AWS API
// Gateway itself answers {"message": "..."} for key and throttling errors.
type ErrorBody struct {
	Message string `json:"message"`
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
