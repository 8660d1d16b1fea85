package techpasssim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/groupgate/groupgate/techpass"
	"github.com/groupgate/groupgate/webhooks"
)

// Webhooks, as TechPass sends them (tenant guide docs/webhooks.md): when a
// user is deleted or updated through the admin endpoints, every namespace
// with a webhook gets a signed delivery (X-TECHPASS-SIGNATURE, see
// webhooks.Sign), retried every RetryEvery until it is answered 2xx or
// Expiry passes. Deliveries are not Automation API requests: they are not
// counted in Stats' request counts.

// Defaults of a Webhook, as TechPass publishes them.
const (
	DefaultWebhookRetry  = 5 * time.Minute
	DefaultWebhookExpiry = 14 * 24 * time.Hour
)

// Webhook is where a namespace's events are delivered.
type Webhook struct {
	// URL receives POSTed events; empty removes the webhook.
	URL string
	// Secret signs the deliveries.
	Secret string
	// RetryEvery is the gap between attempts; zero means
	// DefaultWebhookRetry.
	RetryEvery time.Duration
	// Expiry is how long a delivery is retried; zero means
	// DefaultWebhookExpiry.
	Expiry time.Duration
}

// WebhookStats counts a namespace's deliveries.
type WebhookStats struct {
	// Events is how many events were queued for delivery.
	Events int `json:"events"`
	// Attempts counts every POST, answered or not.
	Attempts int `json:"attempts"`
	// Delivered counts events answered 2xx.
	Delivered int `json:"delivered"`
	// Expired counts events given up after Expiry.
	Expired int `json:"expired"`
	// Pending is how many events are still being retried.
	Pending int `json:"pending"`
}

// hooks is the simulator's webhook state. Guarded by its own mutex, never
// held with Simulator.mu.
type hooks struct {
	mu     sync.Mutex
	byNS   map[string]Webhook
	stats  map[string]*WebhookStats
	client *http.Client
	ctx    context.Context
	stop   context.CancelFunc
	wg     sync.WaitGroup
}

func (s *Simulator) webhookState() *hooks {
	s.hooksOnce.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		s.hooks = &hooks{byNS: map[string]Webhook{}, stats: map[string]*WebhookStats{},
			client: &http.Client{Timeout: 10 * time.Second}, ctx: ctx, stop: cancel}
	})
	return s.hooks
}

// SetWebhook sets (or, with an empty URL, removes) the webhook of the named
// namespace.
func (s *Simulator) SetWebhook(namespace string, w Webhook) error {
	s.mu.Lock()
	_, ok := s.namespaces[namespace]
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownNamespace, namespace)
	}
	if w.URL != "" {
		u, err := url.Parse(w.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%w %q: webhook URL must be an absolute http(s) URL", ErrInvalidNamespace, namespace)
		}
		if w.Secret == "" {
			return fmt.Errorf("%w %q: a webhook needs a secret", ErrInvalidNamespace, namespace)
		}
		if w.RetryEvery < 0 || w.Expiry < 0 {
			return fmt.Errorf("%w %q: webhook retry and expiry must not be negative", ErrInvalidNamespace, namespace)
		}
	}
	h := s.webhookState()
	h.mu.Lock()
	defer h.mu.Unlock()
	if w.URL == "" {
		delete(h.byNS, namespace)
	} else {
		h.byNS[namespace] = w
	}
	return nil
}

// WebhookStats returns the delivery counts of the named namespace.
func (s *Simulator) WebhookStats(namespace string) WebhookStats {
	h := s.webhookState()
	h.mu.Lock()
	defer h.mu.Unlock()
	if st := h.stats[namespace]; st != nil {
		return *st
	}
	return WebhookStats{}
}

// StopWebhooks stops every delivery being retried and waits for them.
func (s *Simulator) StopWebhooks() {
	h := s.webhookState()
	h.stop()
	h.wg.Wait()
}

// SendEvent delivers event (a JSON object with at least an "event" field)
// to the named namespace's webhook, if it has one, retrying in the
// background. It reports whether a delivery was queued.
func (s *Simulator) SendEvent(namespace string, event map[string]any) (bool, error) {
	if _, ok := event["event"].(string); !ok {
		return false, errors.New("techpasssim: an event needs a string \"event\" field")
	}
	body, err := json.Marshal(event)
	if err != nil {
		return false, fmt.Errorf("techpasssim: encode event: %w", err)
	}
	h := s.webhookState()
	h.mu.Lock()
	defer h.mu.Unlock()
	w, ok := h.byNS[namespace]
	if !ok || h.ctx.Err() != nil {
		return false, nil
	}
	st := h.stats[namespace]
	if st == nil {
		st = &WebhookStats{}
		h.stats[namespace] = st
	}
	st.Events++
	st.Pending++
	h.wg.Add(1)
	go s.deliver(h, namespace, w, body)
	return true, nil
}

// deliver POSTs body until it is answered 2xx, its expiry passes or the
// webhooks stop. Each attempt is signed afresh, at its own time.
func (s *Simulator) deliver(h *hooks, namespace string, w Webhook, body []byte) {
	defer h.wg.Done()
	retry, expiry := w.RetryEvery, w.Expiry
	if retry == 0 {
		retry = DefaultWebhookRetry
	}
	if expiry == 0 {
		expiry = DefaultWebhookExpiry
	}
	deadline := s.cfg.Now().Add(expiry)
	count := func(f func(st *WebhookStats)) {
		h.mu.Lock()
		f(h.stats[namespace])
		h.mu.Unlock()
	}
	for {
		ok := s.attempt(h, w, body)
		count(func(st *WebhookStats) { st.Attempts++ })
		if ok {
			count(func(st *WebhookStats) { st.Delivered++; st.Pending-- })
			return
		}
		if !s.cfg.Now().Add(retry).Before(deadline) {
			count(func(st *WebhookStats) { st.Expired++; st.Pending-- })
			s.log.Warn("techpass-sim webhook expired", "namespace", namespace)
			return
		}
		select {
		case <-h.ctx.Done():
			count(func(st *WebhookStats) { st.Pending-- })
			return
		case <-time.After(retry):
		}
	}
}

func (s *Simulator) attempt(h *hooks, w Webhook, body []byte) bool {
	req, err := http.NewRequestWithContext(h.ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return false
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhooks.SignatureHeader, webhooks.Sign([]byte(w.Secret), s.cfg.Now(), body))
	resp, err := h.client.Do(req)
	if err != nil {
		s.log.Info("techpass-sim webhook attempt failed", "err", err.Error())
		return false
	}
	resp.Body.Close()
	s.log.Info("techpass-sim webhook attempt", "status", resp.StatusCode)
	return resp.StatusCode >= 200 && resp.StatusCode < 300
}

// userEvent is the body of a user event. TechPass publishes no schema; this
// is the shape the gateway's parser reads (see package webhooks).
func userEvent(kind string, u techpass.User, extra map[string]any) map[string]any {
	ev := map[string]any{
		"event": kind,
		"user": map[string]any{
			"id": u.ID, "email": u.Email, "userPrincipalName": u.Email, "displayName": u.DisplayName,
		},
	}
	for k, v := range extra {
		ev[k] = v
	}
	return ev
}

// DeleteUser removes the user with object id id from the directory and
// from every group, and sends each namespace with a webhook a user-deleted
// event listing the user's groups there (as namespace:group). It returns
// ErrUnknownUser if there is no such user.
func (s *Simulator) DeleteUser(id string) error {
	id = strings.ToLower(id)
	s.mu.Lock()
	u, ok := s.users.byID[id]
	if !ok {
		s.mu.Unlock()
		return fmt.Errorf("%w: %q", ErrUnknownUser, id)
	}
	delete(s.users.byID, id)
	delete(s.users.byEmail, strings.ToLower(u.Email))
	left := map[string][]string{}
	for name, ns := range s.namespaces {
		left[name] = []string{}
		for _, g := range ns.groups {
			if i := slices.Index(g.members, id); i >= 0 {
				g.members = slices.Delete(g.members, i, i+1)
				left[name] = append(left[name], name+":"+g.Name)
			}
		}
	}
	s.mu.Unlock()
	for ns, gs := range left {
		if _, err := s.SendEvent(ns, userEvent("user-deleted", u, map[string]any{"groups": gs})); err != nil {
			return err
		}
	}
	return nil
}

// UserUpdate is a change to a user: empty fields are left as they are.
type UserUpdate struct {
	Email       string `json:"email"`
	DisplayName string `json:"displayName"`
}

// UpdateUser changes the e-mail (which is also the UPN here) or display
// name of the user with object id id, and sends each namespace with a
// webhook a user-updated event. It returns ErrUnknownUser,
// ErrInvalidUser, or ErrUserExists for an e-mail another user has.
func (s *Simulator) UpdateUser(id string, up UserUpdate) (techpass.User, error) {
	id = strings.ToLower(id)
	s.mu.Lock()
	old, ok := s.users.byID[id]
	if !ok {
		s.mu.Unlock()
		return techpass.User{}, fmt.Errorf("%w: %q", ErrUnknownUser, id)
	}
	u := old
	if up.Email != "" {
		u.Email = up.Email
	}
	if up.DisplayName != "" {
		u.DisplayName = up.DisplayName
	}
	if err := validateUser(u); err != nil {
		s.mu.Unlock()
		return techpass.User{}, err
	}
	if other, taken := s.users.byEmail[strings.ToLower(u.Email)]; taken && other != id {
		s.mu.Unlock()
		return techpass.User{}, fmt.Errorf("%w: e-mail %q", ErrUserExists, u.Email)
	}
	delete(s.users.byEmail, strings.ToLower(old.Email))
	s.users.byID[id] = u
	s.users.byEmail[strings.ToLower(u.Email)] = id
	names := make([]string, 0, len(s.namespaces))
	for name := range s.namespaces {
		names = append(names, name)
	}
	s.mu.Unlock()
	for _, ns := range names {
		if _, err := s.SendEvent(ns, userEvent("user-updated", u, map[string]any{"previous": map[string]any{"email": old.Email}})); err != nil {
			return techpass.User{}, err
		}
	}
	return u, nil
}

// serveDeleteUser is DELETE /_sim/users/{id}: DeleteUser, answered 204.
func (s *Simulator) serveDeleteUser(w http.ResponseWriter, r *http.Request) {
	if err := s.DeleteUser(r.PathValue("id")); err != nil {
		s.writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// servePatchUser is PATCH /_sim/users/{id} with {"email","displayName"}:
// UpdateUser, answered 200 with the user.
func (s *Simulator) servePatchUser(w http.ResponseWriter, r *http.Request) {
	var up UserUpdate
	if !decodeAdmin(w, r, &up) {
		return
	}
	u, err := s.UpdateUser(r.PathValue("id"), up)
	if err != nil {
		s.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, u)
}

// servePostEvent is POST /_sim/namespaces/{namespace}/events with a JSON
// object: SendEvent, answered 202 when a delivery is queued, 409 when the
// namespace has no webhook.
func (s *Simulator) servePostEvent(w http.ResponseWriter, r *http.Request) {
	var ev map[string]any
	if !decodeAdmin(w, r, &ev) {
		return
	}
	queued, err := s.SendEvent(r.PathValue("namespace"), ev)
	switch {
	case err != nil:
		writeMessage(w, http.StatusBadRequest, err.Error())
	case !queued:
		writeMessage(w, http.StatusConflict, "the namespace has no webhook")
	default:
		w.WriteHeader(http.StatusAccepted)
	}
}

// serveWebhookStats is GET /_sim/namespaces/{namespace}/webhook: the
// namespace's WebhookStats.
func (s *Simulator) serveWebhookStats(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.WebhookStats(r.PathValue("namespace")))
}

// webhookRoutes adds the webhook admin endpoints to mux.
func (s *Simulator) webhookRoutes(mux *http.ServeMux) {
	mux.HandleFunc("DELETE /_sim/users/{id}", s.serveDeleteUser)
	mux.HandleFunc("PATCH /_sim/users/{id}", s.servePatchUser)
	mux.HandleFunc("POST /_sim/namespaces/{namespace}/events", s.servePostEvent)
	mux.HandleFunc("GET /_sim/namespaces/{namespace}/webhook", s.serveWebhookStats)
}
