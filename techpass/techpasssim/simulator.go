package techpasssim

import (
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/groupgate/groupgate/techpass"
)

// Defaults applied by New to zero Config fields.
const (
	// DefaultInterval is TechPass's published throttle: one request per
	// second per namespace.
	DefaultInterval = time.Second
	// DefaultTokenLifetime is the lifetime Azure AD gives TechPass tokens
	// (expires_in 1199).
	DefaultTokenLifetime = 1199 * time.Second
	// DefaultGroupLimit is TechPass's published default group limit per
	// namespace.
	DefaultGroupLimit = 50
	// MaxAPIKeys is how many API keys a TechPass namespace may hold.
	MaxAPIKeys = 4
	// MaxGroupNameLength is TechPass's published limit on group names, in
	// characters.
	MaxGroupNameLength = 99
	// MaxGroupDescriptionLength bounds group descriptions, in characters:
	// assumed to be Azure AD's limit, as TechPass publishes none.
	MaxGroupDescriptionLength = 1024
	// DefaultMemberPageSize is how many members a page of the list-members
	// answer holds when Config.MemberPageSize is zero (assumed).
	DefaultMemberPageSize = 100
)

// Errors returned by the Simulator's methods.
var (
	// ErrInvalidConfig is returned (wrapped, with every problem) by
	// Config.Validate.
	ErrInvalidConfig = errors.New("techpasssim: invalid config")
	// ErrInvalidNamespace is returned (wrapped, with every problem) when a
	// Namespace or a credential for it does not validate.
	ErrInvalidNamespace = errors.New("techpasssim: invalid namespace")
	// ErrNamespaceExists is returned by AddNamespace when the name, the
	// client or one of the API keys is already registered.
	ErrNamespaceExists = errors.New("techpasssim: namespace already exists")
	// ErrUnknownNamespace is returned when a method names a namespace that
	// was never added.
	ErrUnknownNamespace = errors.New("techpasssim: unknown namespace")
	// ErrInvalidFaults is returned (wrapped) by Faults.Validate.
	ErrInvalidFaults = errors.New("techpasssim: invalid faults")
	// ErrInvalidUser is returned (wrapped, with every problem) when a user
	// does not validate; see AddUser.
	ErrInvalidUser = errors.New("techpasssim: invalid user")
	// ErrUserExists is returned by AddUser when the id, or the e-mail
	// case-insensitively, is already in the directory.
	ErrUserExists = errors.New("techpasssim: user already exists")
	// ErrUnknownUser is returned when a method names a user id the
	// directory does not hold.
	ErrUnknownUser = errors.New("techpasssim: unknown user")
	// ErrInvalidGroup is returned (wrapped) when a group's name or
	// description does not validate.
	ErrInvalidGroup = errors.New("techpasssim: invalid group")
	// ErrGroupExists is returned when a group of that name (compared
	// case-insensitively) exists in the namespace.
	ErrGroupExists = errors.New("techpasssim: group already exists")
	// ErrGroupLimit is returned when the namespace holds as many groups as
	// its limit allows.
	ErrGroupLimit = errors.New("techpasssim: group limit reached")
	// ErrUnknownGroup is returned when a method names a group the
	// namespace does not hold.
	ErrUnknownGroup = errors.New("techpasssim: unknown group")
	// ErrDynamicGroup is returned when the Automation API is asked to
	// change the members of a dynamic group.
	ErrDynamicGroup = errors.New("techpasssim: members of a dynamic group cannot be changed")
	// ErrTechBizGroup is returned when the Automation API is asked to
	// change a group TechBiz manages.
	ErrTechBizGroup = errors.New("techpasssim: the group is managed by TechBiz")
	// ErrAlreadyMember is returned when adding a user who is a member.
	ErrAlreadyMember = errors.New("techpasssim: already a member")
	// ErrNotMember is returned when removing a user who is not a member.
	ErrNotMember = errors.New("techpasssim: not a member")
)

// Config configures a Simulator. The zero value is usable: every zero field
// takes the default documented on it.
type Config struct {
	// Interval is the minimum start-to-start gap between two Automation API
	// requests of one namespace; a namespace may override it. Zero means
	// DefaultInterval.
	Interval time.Duration
	// TokenLifetime is how long an access token stays valid. Zero means
	// DefaultTokenLifetime; otherwise it must be at least one second, since
	// expires_in is a whole number of seconds.
	TokenLifetime time.Duration
	// GroupLimit is how many groups a namespace may hold; a namespace may
	// override it. Zero means DefaultGroupLimit.
	GroupLimit int
	// APIURL is the Automation API base URL that token requests must name
	// in their scope ("<APIURL>/.default"). Empty means the URL the request
	// reached the simulator on: http://<Host>, or https:// over TLS.
	APIURL string
	// Now is the clock used for token expiry, assertion checks, rate
	// enforcement and group creation times. Nil means time.Now. Injected
	// latency always uses real time.
	Now func() time.Time
	// Seed seeds the fault injection randomness, so that a test with a fixed
	// seed and sequential requests sees the same faults every run. Zero
	// means a time-based seed.
	Seed int64
	// Faults are the faults injected from the start; see SetFaults.
	Faults Faults
	// Users seed the user directory, which all namespaces share; the rules
	// of AddUser apply, and an empty ID gets a random one.
	Users []techpass.User
	// MemberPageSize is how many members a page of the list-members answer
	// holds. Zero means DefaultMemberPageSize.
	MemberPageSize int
	// Routes is the Automation API route table served, as
	// techpass.ResolveRoutes returns it (an operator's corrections
	// applied); nil means techpass.Routes().
	Routes []techpass.Route
	// KeyByKID makes the token endpoint choose an assertion's certificate
	// by its kid header (the x5t#S256 thumbprint) alone, as some token
	// servers do; by default it goes by x5t#S256 or x5t.
	KeyByKID bool
	// RefuseTechBizList answers 400 to a group list with
	// includeOnTechBiz=true, as a TechPass that does not know the
	// parameter might.
	RefuseTechBizList bool
	// Logger receives one line per request (never a credential). Nil
	// discards logs.
	Logger *slog.Logger
}

// Validate reports every problem with c at once, wrapped in
// ErrInvalidConfig.
func (c Config) Validate() error {
	var errs []error
	if c.Interval < 0 {
		errs = append(errs, errors.New("interval must not be negative"))
	}
	if c.TokenLifetime < 0 || (c.TokenLifetime > 0 && c.TokenLifetime < time.Second) {
		errs = append(errs, errors.New("token lifetime must be zero (default) or at least 1s"))
	}
	if c.GroupLimit < 0 {
		errs = append(errs, errors.New("group limit must not be negative"))
	}
	if c.MemberPageSize < 0 {
		errs = append(errs, errors.New("member page size must not be negative"))
	}
	users := newDirectory()
	for i, u := range c.Users {
		if _, err := users.add(u); err != nil {
			errs = append(errs, fmt.Errorf("user %d: %w", i, err))
		}
	}
	if c.APIURL != "" {
		u, err := url.Parse(c.APIURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, errors.New("API URL must be an absolute http(s) URL"))
		}
	}
	if err := c.Faults.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Routes != nil {
		if err := techpass.CheckRoutes(c.Routes); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(errs...))
	}
	return nil
}

// Namespace is one TechPass tenant namespace as registered in the
// simulator: its Azure AD client, its credentials and its API Gateway keys.
type Namespace struct {
	// Name is the TechPass namespace, e.g. "SHIP". It appears verbatim (case
	// sensitive) in Automation API paths.
	Name string
	// DirectoryID is the Azure AD directory (tenant) id in the token URL
	// path. Several namespaces may share one directory, as they do in
	// TechPass. Compared case-insensitively.
	DirectoryID string
	// ClientID is the namespace's Azure AD application (client) id, unique
	// within its directory. Compared case-insensitively.
	ClientID string
	// ClientSecret is the client secret; empty means secret authentication
	// is refused.
	ClientSecret string
	// Certificate, when set, allows client assertions signed (RS256 or
	// PS256) with its RSA key.
	Certificate *x509.Certificate
	// MoreCertificates are further registered certificates, accepted like
	// Certificate: an application holds two during a rollover.
	MoreCertificates []*x509.Certificate
	// APIKeys are the x-api-key values accepted for this namespace: one to
	// MaxAPIKeys distinct, non-empty keys, unique across namespaces.
	APIKeys []string
	// Interval overrides Config.Interval for this namespace when non-zero.
	Interval time.Duration
	// GroupLimit overrides Config.GroupLimit for this namespace when
	// non-zero.
	GroupLimit int
}

// validate reports every problem with ns at once, wrapped in
// ErrInvalidNamespace.
func (ns Namespace) validate() error {
	var errs []error
	if ns.Name == "" || strings.ContainsAny(ns.Name, "/?#% \t\r\n") {
		errs = append(errs, errors.New("name must be non-empty and usable as a path segment"))
	}
	if strings.TrimSpace(ns.DirectoryID) == "" || strings.Contains(ns.DirectoryID, "/") {
		errs = append(errs, errors.New("directory id must be non-empty and contain no slash"))
	}
	if strings.TrimSpace(ns.ClientID) == "" {
		errs = append(errs, errors.New("client id must be non-empty"))
	}
	if ns.ClientSecret == "" && ns.Certificate == nil {
		errs = append(errs, errors.New("a client secret or a certificate is required"))
	}
	for _, c := range append([]*x509.Certificate{ns.Certificate}, ns.MoreCertificates...) {
		if err := validateCertificate(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := validateAPIKeys(ns.APIKeys); err != nil {
		errs = append(errs, err)
	}
	if ns.Interval < 0 {
		errs = append(errs, errors.New("interval must not be negative"))
	}
	if ns.GroupLimit < 0 {
		errs = append(errs, errors.New("group limit must not be negative"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w %q: %w", ErrInvalidNamespace, ns.Name, errors.Join(errs...))
	}
	return nil
}

func validateCertificate(c *x509.Certificate) error {
	if c == nil {
		return nil
	}
	if _, ok := c.PublicKey.(*rsa.PublicKey); !ok {
		return errors.New("certificate must hold an RSA public key (RS256/PS256 assertions)")
	}
	return nil
}

func validateAPIKeys(keys []string) error {
	if len(keys) == 0 || len(keys) > MaxAPIKeys {
		return fmt.Errorf("between 1 and %d API keys are required, got %d", MaxAPIKeys, len(keys))
	}
	for i, k := range keys {
		if k == "" {
			return fmt.Errorf("API key %d is empty", i)
		}
		if slices.Index(keys, k) != i {
			return fmt.Errorf("API key %d repeats an earlier key", i)
		}
	}
	return nil
}

// Simulator is a simulated TechPass: token endpoint, Automation API and
// admin endpoints, all served by Handler. Create one with New. It is safe for
// concurrent use.
type Simulator struct {
	cfg     Config // defaults applied
	log     *slog.Logger
	handler http.Handler

	mu         sync.Mutex
	rng        *rand.Rand
	faults     Faults
	namespaces map[string]*namespace // by Name
	users      directory
	clients    map[clientKey]*namespace // by lower-cased directory and client ids
	tokens     map[string]accessToken
	issued     []string
	assertions []string // every client assertion received, for canary tests
	other      otherCounters

	// realClock is set when the simulator runs on time.Now, and so may
	// stamp arrivals with its connections' stamps (arrival.go).
	realClock bool
	arrivals  arrivals

	// hooks delivers webhooks (webhooks.go); made on first use.
	hooksOnce sync.Once
	hooks     *hooks
}

// namespace is a registered Namespace with its state. Guarded by
// Simulator.mu.
type namespace struct {
	Namespace
	groups []*group // in creation order
	jtis   map[string]time.Time
	rate   rateState
	stats  namespaceCounters
}

type clientKey struct{ directory, client string }

func keyOf(directoryID, clientID string) clientKey {
	return clientKey{strings.ToLower(directoryID), strings.ToLower(clientID)}
}

type accessToken struct {
	namespace string
	expires   time.Time
}

// New returns a Simulator configured by cfg, with no namespaces. It panics if
// cfg does not validate (see Config.Validate): a bad simulator config is a
// programming error in a test or in the caller's flag checks.
func New(cfg Config) *Simulator {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.TokenLifetime == 0 {
		cfg.TokenLifetime = DefaultTokenLifetime
	}
	if cfg.GroupLimit == 0 {
		cfg.GroupLimit = DefaultGroupLimit
	}
	if cfg.MemberPageSize == 0 {
		cfg.MemberPageSize = DefaultMemberPageSize
	}
	realClock := cfg.Now == nil
	if realClock {
		cfg.Now = time.Now
	}
	if cfg.Routes == nil {
		cfg.Routes = techpass.Routes()
	}
	seed := uint64(cfg.Seed)
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Simulator{
		cfg:        cfg,
		log:        log,
		rng:        rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		faults:     cfg.Faults,
		namespaces: make(map[string]*namespace),
		clients:    make(map[clientKey]*namespace),
		tokens:     make(map[string]accessToken),
		users:      newDirectory(),
		realClock:  realClock,
	}
	for _, u := range cfg.Users {
		_, _ = s.users.add(u) // validated above
	}
	s.handler = s.logRequests(s.forgetArrivals(s.routes()))
	return s
}

// Handler returns the handler serving the token endpoint, the Automation API
// and the admin endpoints. It is the same handler on every call.
func (s *Simulator) Handler() http.Handler { return s.handler }

// AddNamespace registers ns. It returns an error wrapping
// ErrInvalidNamespace if ns does not validate, and ErrNamespaceExists if its
// name (case-insensitively), its directory and client id pair, or one of its
// API keys is already registered.
func (s *Simulator) AddNamespace(ns Namespace) error {
	if err := ns.validate(); err != nil {
		return err
	}
	ns.APIKeys = slices.Clone(ns.APIKeys)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, other := range s.namespaces {
		if strings.EqualFold(other.Name, ns.Name) {
			return fmt.Errorf("%w: name %q", ErrNamespaceExists, ns.Name)
		}
		for _, k := range ns.APIKeys {
			if slices.Contains(other.APIKeys, k) {
				return fmt.Errorf("%w: an API key of %q is already used by %q", ErrNamespaceExists, ns.Name, other.Name)
			}
		}
	}
	key := keyOf(ns.DirectoryID, ns.ClientID)
	if other, ok := s.clients[key]; ok {
		return fmt.Errorf("%w: client %q in directory %q already belongs to %q", ErrNamespaceExists, ns.ClientID, ns.DirectoryID, other.Name)
	}
	n := &namespace{
		Namespace: ns,
		jtis:      make(map[string]time.Time),
		stats:     newNamespaceCounters(0),
	}
	s.namespaces[ns.Name] = n
	s.clients[key] = n
	return nil
}

// SetClientSecret rotates the client secret of the named namespace: secret
// replaces, and so revokes, the previous one. An empty secret refuses secret
// authentication from now on, which is only allowed when the namespace has a
// certificate. Access tokens already issued stay valid until they expire, as
// in Azure AD.
func (s *Simulator) SetClientSecret(namespace, secret string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ns, ok := s.namespaces[namespace]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownNamespace, namespace)
	}
	if secret == "" && ns.Certificate == nil {
		return fmt.Errorf("%w %q: removing the secret would leave no credential", ErrInvalidNamespace, namespace)
	}
	ns.ClientSecret = secret
	return nil
}

// SetCertificate registers cert as the certificate of the named
// namespace's application, replacing (and so revoking) the previous one, as
// a tenant does when rotating its certificate. A nil cert removes
// certificate authentication, which is only allowed while the namespace has
// a client secret. Access tokens already issued stay valid until they
// expire.
func (s *Simulator) SetCertificate(namespace string, cert *x509.Certificate) error {
	if err := validateCertificate(cert); err != nil {
		return fmt.Errorf("%w %q: %w", ErrInvalidNamespace, namespace, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ns, ok := s.namespaces[namespace]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownNamespace, namespace)
	}
	if cert == nil && ns.ClientSecret == "" {
		return fmt.Errorf("%w %q: removing the certificate would leave no credential", ErrInvalidNamespace, namespace)
	}
	ns.Certificate = cert
	ns.MoreCertificates = nil
	return nil
}

// AddCertificate registers cert as a further certificate of the named
// namespace's application, beside those it has: the first half of a
// rollover, when both the old and the new certificate are accepted.
func (s *Simulator) AddCertificate(namespace string, cert *x509.Certificate) error {
	if cert == nil {
		return fmt.Errorf("%w %q: no certificate", ErrInvalidNamespace, namespace)
	}
	if err := validateCertificate(cert); err != nil {
		return fmt.Errorf("%w %q: %w", ErrInvalidNamespace, namespace, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ns, ok := s.namespaces[namespace]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownNamespace, namespace)
	}
	if ns.Certificate == nil {
		ns.Certificate = cert
	} else {
		ns.MoreCertificates = append(ns.MoreCertificates, cert)
	}
	return nil
}

// certificates returns every registered certificate. Call with s.mu held.
func (ns *namespace) certificates() []*x509.Certificate {
	var out []*x509.Certificate
	if ns.Certificate != nil {
		out = append(out, ns.Certificate)
	}
	return append(out, ns.MoreCertificates...)
}

// SetAPIKeys replaces the API keys of the named namespace, as a tenant does
// when rotating keys. The rules of Namespace.APIKeys apply.
func (s *Simulator) SetAPIKeys(namespace string, keys ...string) error {
	if err := validateAPIKeys(keys); err != nil {
		return fmt.Errorf("%w %q: %w", ErrInvalidNamespace, namespace, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ns, ok := s.namespaces[namespace]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownNamespace, namespace)
	}
	for _, other := range s.namespaces {
		if other == ns {
			continue
		}
		for _, k := range keys {
			if slices.Contains(other.APIKeys, k) {
				return fmt.Errorf("%w: an API key of %q is already used by %q", ErrNamespaceExists, namespace, other.Name)
			}
		}
	}
	ns.APIKeys = slices.Clone(keys)
	return nil
}

// Groups returns the groups of the named namespace in creation order (a
// non-nil, possibly empty slice), TechBiz-managed ones included, or nil for
// an unknown namespace. Reading them does not count as a request.
func (s *Simulator) Groups(namespace string) []techpass.Group {
	s.mu.Lock()
	defer s.mu.Unlock()
	ns, ok := s.namespaces[namespace]
	if !ok {
		return nil
	}
	return ns.wireGroups(true)
}

// SetFaults replaces the faults injected from now on. It returns an error
// wrapping ErrInvalidFaults, and changes nothing, if f does not validate.
func (s *Simulator) SetFaults(f Faults) error {
	if err := f.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
	return nil
}

// CurrentFaults returns the faults being injected.
func (s *Simulator) CurrentFaults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults
}

// IssuedTokens returns every access token issued so far, in order, so that
// canary tests can check that none leaks into logs or answers.
func (s *Simulator) IssuedTokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.issued)
}

// ReceivedAssertions returns every client assertion presented to the token
// endpoint so far, accepted or not, in order, so that canary tests can check
// that none leaks, and replay tests can present one again.
func (s *Simulator) ReceivedAssertions() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.assertions)
}

// TokenURL returns the token endpoint URL of directoryID on a simulator
// served at baseURL (for example an httptest.Server's URL).
func TokenURL(baseURL, directoryID string) string {
	return strings.TrimSuffix(baseURL, "/") + "/" + url.PathEscape(directoryID) + "/oauth2/v2.0/token"
}

// Scope returns the scope a token request must name for the Automation API
// served at apiURL.
func Scope(apiURL string) string {
	return strings.TrimSuffix(apiURL, "/") + "/.default"
}

func (s *Simulator) interval(ns *namespace) time.Duration {
	if ns.Interval > 0 {
		return ns.Interval
	}
	return s.cfg.Interval
}

func (s *Simulator) groupLimit(ns *namespace) int {
	if ns.GroupLimit > 0 {
		return ns.GroupLimit
	}
	return s.cfg.GroupLimit
}

// routes builds the mux: the token endpoint, every route of
// techpass.Routes, the admin endpoints, and a JSON 404 for everything else.
func (s *Simulator) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /{directoryID}/oauth2/v2.0/token", s.serveToken)
	for _, rt := range s.cfg.Routes {
		h := s.routeHandler(rt.Name)
		if h == nil {
			h = notImplemented
		}
		mux.Handle(rt.Method+" "+rt.Pattern, s.automation(rt, h))
	}
	mux.HandleFunc("GET /_sim/stats", s.serveStats)
	mux.HandleFunc("POST /_sim/stats/reset", s.serveResetStats)
	mux.HandleFunc("GET /_sim/faults", s.serveGetFaults)
	mux.HandleFunc("PUT /_sim/faults", s.servePutFaults)
	mux.HandleFunc("GET /_sim/namespaces/{namespace}/groups", s.serveGroupsDump)
	mux.HandleFunc("POST /_sim/namespaces/{namespace}/groups", s.serveCreateGroup)
	mux.HandleFunc("DELETE /_sim/namespaces/{namespace}/groups/{name}", s.serveDeleteGroup)
	mux.HandleFunc("GET /_sim/namespaces/{namespace}/groups/{name}/members", s.serveMembers)
	mux.HandleFunc("POST /_sim/namespaces/{namespace}/groups/{name}/members", s.serveAddMember)
	mux.HandleFunc("DELETE /_sim/namespaces/{namespace}/groups/{name}/members/{userId}", s.serveRemoveMember)
	mux.HandleFunc("PUT /_sim/namespaces/{namespace}/groups/{name}/owners", s.servePutOwners)
	mux.HandleFunc("GET /_sim/users", s.serveUsers)
	mux.HandleFunc("POST /_sim/users", s.serveAddUser)
	s.webhookRoutes(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.other.unknownRoutes++
		s.mu.Unlock()
		writeMessage(w, http.StatusNotFound, "Not Found")
	})
	return mux
}

// logRequests logs one line per request: method, path, status and duration.
// Paths carry no credentials; headers and bodies, which do, are never
// logged.
func (s *Simulator) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "techpass-sim request",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", sw.status),
			slog.Duration("duration", time.Since(start)),
		)
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// retryAfterSeconds renders d as a Retry-After value: whole seconds,
// rounded up, at least 1.
func retryAfterSeconds(d time.Duration) string {
	secs := int64(math.Ceil(d.Seconds()))
	return fmt.Sprint(max(secs, 1))
}
