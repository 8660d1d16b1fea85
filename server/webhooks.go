package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/groupgate/groupgate/api"
	"github.com/groupgate/groupgate/audit"
	"github.com/groupgate/groupgate/credentials"
	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/tenants"
	"github.com/groupgate/groupgate/webhooks"
)

// TechPass's webhooks. Every running tenant has a receiver at
// /v1/tenants/{tenant}/webhooks/techpass (package webhooks verifies and
// applies the deliveries). Its secrets (the current one and, during a
// changeover, the previous one) are credentials like the others: a file, a
// variable or a value sealed in the store, never the configuration file.
// They are read at each delivery, so a rotated file or variable applies at
// once, without a restart. A tenant on the built-in simulator without its
// own secret uses the one generated for it.

// webhookReceivers answer the webhook endpoint (api.Webhooks) with the
// receivers of the running tenants' runtimes, count the deliveries, and keep
// what the tenants' application events and webhook secrets leave in /readyz.
// Safe for concurrent use.
type webhookReceivers struct {
	runtimes *runtimes
	// notices keeps, per tenant, the application events to show in
	// /readyz for NoticeRetention: in the store, so a restart keeps them.
	notices noticeStore

	mu sync.Mutex
	// secrets are, per tenant, what is wrong with its webhook secrets as
	// last read (a short one, a missing file), shown in /readyz.
	secrets map[string]string

	deliveries *prometheus.CounterVec
}

// noticeStore keeps the application notices (boltstore).
type noticeStore interface {
	PutWebhookNotice(ctx context.Context, tenant, kind, text string, expires time.Time) error
	WebhookNotices(ctx context.Context, now time.Time) (map[string][]string, error)
	DeleteWebhookNotices(ctx context.Context, tenant string) error
}

// noticeRetention is how long an application event shows in /readyz: as
// long as TechPass retries a delivery.
const noticeRetention = webhooks.Retention

func newWebhookReceivers(reg *prometheus.Registry, rts *runtimes, notices noticeStore) *webhookReceivers {
	w := &webhookReceivers{
		runtimes: rts, notices: notices, secrets: map[string]string{},
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "groupgate_webhook_deliveries_total",
			Help: "TechPass webhook deliveries, by tenant, kind (user-gone, user-updated, application-credentials-expiring, application-deleted, other; refused) and status.",
		}, []string{"tenant", "kind", "status"}),
	}
	reg.MustRegister(w.deliveries)
	return w
}

// forget drops what /readyz shows of a tenant whose runtime is gone.
func (w *webhookReceivers) forget(tenant string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.secrets, tenant)
	// What is left is pruned after noticeRetention anyway.
	_ = w.notices.DeleteWebhookNotices(context.Background(), tenant)
}

// secretNote keeps what is wrong with tenant's webhook secrets (nothing
// when errs is empty) for /readyz.
func (w *webhookReceivers) secretNote(tenant string, errs []error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(errs) == 0 {
		delete(w.secrets, tenant)
		return
	}
	w.secrets[tenant] = "webhook secret unusable: " + errors.Join(errs...).Error()
}

func (w *webhookReceivers) get(tenant string) *webhooks.Receiver {
	if rt := w.runtimes.get(tenant); rt != nil {
		return rt.hook
	}
	return nil
}

// Has implements api.Webhooks.
func (w *webhookReceivers) Has(tenant string) bool { return w.get(tenant) != nil }

// Receive implements api.Webhooks.
func (w *webhookReceivers) Receive(ctx context.Context, tenant, signature string, body []byte) (webhooks.Outcome, error) {
	r := w.get(tenant)
	if r == nil {
		return webhooks.Outcome{}, fmt.Errorf("webhook of tenant %s: %w", tenant, tenants.ErrNotFound)
	}
	out, err := r.Receive(ctx, signature, body)
	switch {
	case errors.Is(err, webhooks.ErrBadSignature), errors.Is(err, webhooks.ErrStale), errors.Is(err, webhooks.ErrMalformed):
		w.deliveries.WithLabelValues(tenant, "refused", "refused").Inc()
	case err == nil:
		w.deliveries.WithLabelValues(tenant, string(out.Event.Kind), string(out.Status)).Inc()
	}
	return out, err
}

// notice keeps note, "<kind>: <text>", as tenant's notice of that kind
// (replacing the one before) until noticeRetention after now.
func (w *webhookReceivers) notice(ctx context.Context, tenant, note string, now time.Time) error {
	kind, _, _ := strings.Cut(note, ":")
	return w.notices.PutWebhookNotice(ctx, tenant, kind, note, now.Add(noticeRetention))
}

// checks adds the check "webhooks:<TENANT>" of every tenant with an
// application event in the last noticeRetention, or an unusable webhook
// secret: it passes (neither stops the gateway) with them as its detail.
func (w *webhookReceivers) checks(ctx context.Context, checks map[string]error, now time.Time) {
	notices, err := w.notices.WebhookNotices(ctx, now)
	if err != nil {
		checks["webhooks"] = api.Notice("application notices unreadable: " + err.Error())
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for tenant, notes := range notices {
		if len(notes) > 0 {
			checks["webhooks:"+tenant] = api.Notice(strings.Join(notes, "; "))
		}
	}
	for tenant, note := range w.secrets {
		if prev, ok := checks["webhooks:"+tenant]; ok {
			note = prev.Error() + "; " + note
		}
		checks["webhooks:"+tenant] = api.Notice(note)
	}
}

// webhookReceiver builds the receiver of the tenant of st.
func (s *Server) webhookReceiver(st tenantSettings) (*webhooks.Receiver, error) {
	t := st.Tenant
	current, previous := t.TechPass.WebhookSecret, t.TechPass.PreviousWebhookSecret
	if !current.Set() && !previous.Set() && t.TechPass.APIURL == "" {
		sim, err := s.simulatorFor(st)
		if err != nil {
			return nil, err
		}
		current = sim.WebhookSecret
	}
	var sources []*credentials.Source
	for _, c := range []struct {
		ref   tenants.Credential
		kind  credentials.Kind
		field string
	}{{current, credentials.KindWebhookSecret, "webhookSecret"}, {previous, credentials.KindPreviousWebhookSecret, "previousWebhookSecret"}} {
		if c.ref.Set() {
			sources = append(sources, s.credLoader.Source(c.kind, t.Name, c.field, c.ref))
		}
	}
	log := s.logger.With("tenant", t.Name, "component", "webhooks")
	r := webhooks.NewReceiver(webhooks.Config{
		Tenant: t.Name,
		Secrets: func() ([][]byte, error) {
			if len(sources) == 0 {
				return nil, errors.New("the tenant has no webhook secret (techpass.webhook_secret_file, _env, or webhookSecret through the admin API)")
			}
			var out [][]byte
			var errs []error
			for _, src := range sources {
				b, _, err := s.credLoader.ReadSource(src)
				if err == nil && len(b) < tenants.MinWebhookSecret {
					err = fmt.Errorf("holds %d bytes, fewer than the %d required: deliveries signed with it are refused", len(b), tenants.MinWebhookSecret)
				}
				if src.Kind() == credentials.KindPreviousWebhookSecret && errors.Is(err, fs.ErrNotExist) {
					continue // no changeover under way: the normal case
				}
				if err != nil {
					errs = append(errs, fmt.Errorf("%s (%s): %w", src.Kind(), src.Where(), err))
					continue
				}
				out = append(out, b)
			}
			s.hooks.secretNote(t.Name, errs)
			return out, errors.Join(errs...)
		},
		Store:     s.store,
		OnOutcome: s.webhookOutcome,
		Now:       s.opts.Now,
		Logger:    log,
	})
	if len(sources) > 0 {
		if _, err := r.Secrets(); err != nil {
			log.Error("a webhook secret is unusable", "err", err)
		}
	}
	return r, nil
}

// webhookOutcome audits what a delivery did and keeps what /readyz shows.
// Entries name users by id and e-mail, events by type: never a secret or a
// signature.
func (s *Server) webhookOutcome(ctx context.Context, o webhooks.Outcome) {
	r := audit.Entry{Actor: "techpass", Role: audit.System, Tenant: o.Tenant, Outcome: audit.Succeeded}
	ev := o.Event
	switch {
	case o.Status == webhooks.Ignored:
		r.Action, r.Outcome, r.Detail = "webhook.ignored", audit.Failed, ev.Type+" names no usable user"
	case (ev.Kind == webhooks.UserGone || ev.Kind == webhooks.UserUpdated) && !o.Applied.Known && len(o.Applied.Left) == 0:
		// Not drift: the mirror did not know the user.
		r.Action, r.Target = "webhook.received", userTarget(ev.User, groups.User{})
		r.Detail = "TechPass " + ev.Type + ": the mirror does not know the user; nothing of it changed"
		if ev.Kind == webhooks.UserGone {
			r.Detail += " (the user is marked deleted, so adds of it fail)"
		}
	case ev.Kind == webhooks.UserGone:
		for _, g := range o.Applied.Left {
			s.recordDrift(ctx, groups.Drift{Kind: "member.vanished", Group: g, User: o.Applied.User})
		}
		r.Action, r.Target = "drift.user.deleted", userTarget(ev.User, o.Applied.User)
		r.Detail = fmt.Sprintf("TechPass %s: removed from %d group(s) of the mirror and from its known users; adds of the user now fail", ev.Type, len(o.Applied.Left))
	case ev.Kind == webhooks.UserUpdated:
		r.Action, r.Target = "drift.user.updated", userTarget(ev.User, groups.User{})
		r.Detail = "TechPass user-updated: the mirror's record follows"
		if o.Applied.Known && !strings.EqualFold(o.Applied.User.Email, ev.User.Email) {
			r.Detail = fmt.Sprintf("TechPass user-updated: e-mail %s is now %s", o.Applied.User.Email, ev.User.Email)
		}
	case ev.Kind == webhooks.CredentialsExpiring, ev.Kind == webhooks.ApplicationDeleted:
		r.Action, r.Target = "techpass."+ev.Type, "application"
		r.Detail = "TechPass says the tenant's application credentials are about to expire: rotate them"
		note := "application-credentials-expiring: TechPass says the application credentials are about to expire (webhook of %s): rotate them"
		if ev.Kind == webhooks.ApplicationDeleted {
			r.Detail = "TechPass says the tenant's application was deleted: its upstream calls will fail"
			note = "application-deleted: TechPass says the application was deleted (webhook of %s): upstream calls will fail"
		}
		if err := s.hooks.notice(ctx, o.Tenant, fmt.Sprintf(note, s.opts.Now().UTC().Format(time.RFC3339)), s.opts.Now()); err != nil {
			s.logger.Error("webhook notice not kept for /readyz", "tenant", o.Tenant, "err", err)
		}
	default:
		r.Action, r.Target, r.Detail = "webhook.received", ev.Type, "event acknowledged; the gateway does not act on it"
	}
	s.audit.Record(ctx, r)
}

func userTarget(u, known groups.User) string {
	id, email := u.ID, u.Email
	if id == "" {
		id = known.ID
	}
	if email == "" {
		email = known.Email
	}
	return strings.Trim("user:"+id+" "+email, " ")
}
