package techpasssim

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/groupgate/groupgate/techpass"
)

// OAuth 2.0 values the token endpoint accepts.
const (
	grantClientCredentials = "client_credentials"
	// AssertionTypeJWTBearer is the client_assertion_type of a certificate
	// client assertion.
	AssertionTypeJWTBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
)

// aadError is a token endpoint failure, answered in Azure AD's shape. Its
// description is a constant or built from constants: it never echoes a
// request value, so it can never leak a secret or an assertion.
type aadError struct {
	status int
	code   string // OAuth error, e.g. invalid_client
	aadsts int    // AADSTS code
	desc   string
}

func (e *aadError) Error() string { return fmt.Sprintf("%s: AADSTS%d: %s", e.code, e.aadsts, e.desc) }

// The token endpoint's errors. The AADSTS codes are Azure AD's for these
// situations; where Azure's exact answer is not known (the malformed-request
// cases, the assertion details) the simulator's choice is assumed.
func errMissingParam(name string) *aadError {
	return &aadError{http.StatusBadRequest, "invalid_request", 900144,
		"The request body must contain the following parameter: '" + name + "'."}
}

func errMalformed(why string) *aadError {
	return &aadError{http.StatusBadRequest, "invalid_request", 9002313,
		"Invalid request. Request is malformed or invalid: " + why + "."}
}

var (
	errUnknownDirectory = &aadError{http.StatusBadRequest, "invalid_request", 90002,
		"Tenant not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."}
	errUnsupportedGrant = &aadError{http.StatusBadRequest, "unsupported_grant_type", 70003,
		"The app requested an unsupported grant type."}
	errUnknownClient = &aadError{http.StatusBadRequest, "unauthorized_client", 700016,
		"Application with the given identifier was not found in the directory."}
	errBadSecret = &aadError{http.StatusUnauthorized, "invalid_client", 7000215,
		"Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID."}
	errNoCredential = &aadError{http.StatusUnauthorized, "invalid_client", 7000218,
		"The request body must contain the following parameter: 'client_assertion' or 'client_secret'."}
	errBadScope = &aadError{http.StatusBadRequest, "invalid_scope", 1002012,
		"The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."}
	errOutage = &aadError{http.StatusServiceUnavailable, "temporarily_unavailable", 90033,
		"A transient error has occurred. Please try again."}
)

func errBadAssertion(why string) *aadError {
	return &aadError{http.StatusUnauthorized, "invalid_client", 700027,
		"Client assertion failed validation: " + why + "."}
}

// tokenFields are the form fields the token endpoint reads; each may appear
// at most once.
var tokenFields = []string{"client_id", "client_secret", "client_assertion", "client_assertion_type", "grant_type", "scope"}

// tokenRequest is a parsed token request.
type tokenRequest struct {
	directoryID   string
	grantType     string
	clientID      string
	secret        string
	assertion     string
	assertionType string
	scope         string
	apiURL        string // the Automation API base URL the scope must name
	tokenURL      string // this endpoint's URL, the assertion's audience
}

// serveToken is the Azure AD v2 token endpoint,
// POST /{directoryID}/oauth2/v2.0/token.
func (s *Simulator) serveToken(w http.ResponseWriter, r *http.Request) {
	req, perr := parseTokenRequest(w, r, s.cfg.APIURL)
	s.mu.Lock()
	resp, err := s.issueToken(req, perr)
	s.mu.Unlock()
	if err != nil {
		writeAADError(w, err, s.cfg.Now())
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, resp)
}

// parseTokenRequest reads the form, accepting the client id and secret in
// HTTP Basic auth too (golang.org/x/oauth2 sends them there, URL-encoded).
// It returns what it could read even on error, so the request can still be
// counted against its namespace.
func parseTokenRequest(w http.ResponseWriter, r *http.Request, apiURL string) (tokenRequest, *aadError) {
	base := baseURL(r)
	if apiURL == "" {
		apiURL = base
	}
	req := tokenRequest{
		directoryID: r.PathValue("directoryID"),
		apiURL:      apiURL,
		tokenURL:    base + r.URL.EscapedPath(),
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	if err := r.ParseForm(); err != nil {
		return req, errMalformed("the body is not a valid form")
	}
	f := r.PostForm // never the query string: credentials belong in the body
	req.grantType = f.Get("grant_type")
	req.clientID = f.Get("client_id")
	req.secret = f.Get("client_secret")
	req.assertion = f.Get("client_assertion")
	req.assertionType = f.Get("client_assertion_type")
	req.scope = f.Get("scope")
	for _, name := range tokenFields {
		if len(f[name]) > 1 {
			return req, errMalformed("parameter '" + name + "' appears more than once")
		}
	}
	if user, pass, ok := r.BasicAuth(); ok {
		user, pass = queryUnescape(user), queryUnescape(pass)
		if req.clientID != "" && !strings.EqualFold(req.clientID, user) {
			return req, errMalformed("the client id in the body and in the Authorization header differ")
		}
		if req.secret != "" {
			return req, errMalformed("the client secret was sent both in the body and in the Authorization header")
		}
		req.clientID, req.secret = user, pass
	}
	return req, nil
}

func queryUnescape(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

// baseURL is the URL the request reached the simulator on, without a path.
func baseURL(r *http.Request) string {
	if r.TLS != nil {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}

// issueToken checks a parsed token request (perr is its parse error) and
// issues a token, counting the request. Call with s.mu held.
func (s *Simulator) issueToken(req tokenRequest, perr *aadError) (techpass.TokenResponse, *aadError) {
	ns := s.clients[keyOf(req.directoryID, req.clientID)]
	if ns != nil {
		ns.stats.TokenRequests++
	} else {
		s.other.tokenRequests++
	}
	resp, err := s.checkAndIssue(ns, req, perr)
	if err != nil {
		if ns != nil {
			ns.stats.TokenFailures++
		} else {
			s.other.tokenFailures++
		}
	}
	return resp, err
}

func (s *Simulator) checkAndIssue(ns *namespace, req tokenRequest, perr *aadError) (techpass.TokenResponse, *aadError) {
	switch {
	case perr != nil:
		return techpass.TokenResponse{}, perr
	case s.faults.tokenOutage(s.cfg.Now()):
		return techpass.TokenResponse{}, errOutage
	case !s.knownDirectory(req.directoryID):
		return techpass.TokenResponse{}, errUnknownDirectory
	case req.grantType == "":
		return techpass.TokenResponse{}, errMissingParam("grant_type")
	case req.grantType != grantClientCredentials:
		return techpass.TokenResponse{}, errUnsupportedGrant
	case req.clientID == "":
		return techpass.TokenResponse{}, errMissingParam("client_id")
	case ns == nil:
		return techpass.TokenResponse{}, errUnknownClient
	}
	if err := s.authenticateClient(ns, req); err != nil {
		return techpass.TokenResponse{}, err
	}
	switch {
	case req.scope == "":
		return techpass.TokenResponse{}, errMissingParam("scope")
	case !strings.EqualFold(req.scope, Scope(req.apiURL)):
		return techpass.TokenResponse{}, errBadScope
	}

	lifetime := s.cfg.TokenLifetime
	if s.faults.TokenLifetime > 0 {
		lifetime = s.faults.TokenLifetime
	}
	tok := newAccessToken()
	s.tokens[tok] = accessToken{namespace: ns.Name, expires: s.cfg.Now().Add(lifetime)}
	s.issued = append(s.issued, tok)
	secs := int(lifetime / time.Second)
	return techpass.TokenResponse{TokenType: "Bearer", ExpiresIn: secs, ExtExpiresIn: secs, AccessToken: tok}, nil
}

func (s *Simulator) knownDirectory(id string) bool {
	id = strings.ToLower(id)
	for k := range s.clients {
		if k.directory == id {
			return true
		}
	}
	return false
}

// authenticateClient checks the one client credential the request carries:
// a secret or a certificate assertion. Call with s.mu held.
func (s *Simulator) authenticateClient(ns *namespace, req tokenRequest) *aadError {
	switch {
	case req.secret != "" && req.assertion != "":
		return errMalformed("send either a client secret or a client assertion, not both")
	case req.secret != "":
		if ns.ClientSecret == "" || !equalSecret(req.secret, ns.ClientSecret) {
			return errBadSecret
		}
		return nil
	case req.assertion != "":
		s.assertions = append(s.assertions, req.assertion)
		if req.assertionType != AssertionTypeJWTBearer {
			return errMalformed("client_assertion_type must be " + AssertionTypeJWTBearer)
		}
		return s.verifyAssertion(ns, req.assertion, req.tokenURL)
	}
	return errNoCredential
}

// equalSecret compares in constant time, hashing first so that not even
// the length of the secret leaks.
func equalSecret(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}

// newAccessToken returns an opaque token with 256 bits of entropy.
func newAccessToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// aadErrorBody is Azure AD's error answer, trace fields included.
type aadErrorBody struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	ErrorCodes       []int  `json:"error_codes"`
	Timestamp        string `json:"timestamp"`
	TraceID          string `json:"trace_id"`
	CorrelationID    string `json:"correlation_id"`
}

func writeAADError(w http.ResponseWriter, e *aadError, now time.Time) {
	ts := now.UTC().Format("2006-01-02 15:04:05Z")
	trace, corr := newObjectID(), newObjectID()
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, e.status, aadErrorBody{
		Error: e.code,
		ErrorDescription: fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s",
			e.aadsts, e.desc, trace, corr, ts),
		ErrorCodes:    []int{e.aadsts},
		Timestamp:     ts,
		TraceID:       trace,
		CorrelationID: corr,
	})
}
