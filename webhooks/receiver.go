package webhooks

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/groupgate/groupgate/groups"
)

// Retention is how long a delivery is remembered: TechPass retries a failed
// delivery every 5 minutes for 14 days.
const Retention = 14 * 24 * time.Hour

// MarkRetention is how long a user-deleted mark is kept: long enough for
// every queued add and every retry of the user's events.
const MarkRetention = 30 * 24 * time.Hour

// MaxBody bounds a delivery's body, in bytes.
const MaxBody = 64 << 10

// Status says how a delivery was handled.
type Status string

// The statuses of a verified delivery.
const (
	// Processed: applied (its effects, if any, are in the mirror).
	Processed Status = "processed"
	// Duplicate: a repeat of a delivery already processed; nothing changed.
	Duplicate Status = "duplicate"
	// Ignored: verified but not usable (a user event naming no user); it
	// is remembered, so its retries are duplicates.
	Ignored Status = "ignored"
)

// Outcome is the result of a delivery that verified.
type Outcome struct {
	Tenant  string
	Event   Event
	Status  Status
	Applied Applied
}

// Config configures a Receiver. Tenant, Secrets and Store are required.
type Config struct {
	Tenant string
	// Secrets returns the webhook secrets accepted now: the current one,
	// and the previous one during a changeover, and an error describing
	// any that is unusable (logged at most once a minute). No usable secret
	// refuses every delivery (as a bad signature) until one is usable. It is
	// called only for a delivery whose signature header parses.
	Secrets func() ([][]byte, error)
	Store   Store
	// OnOutcome, if set, is told of every delivery processed or ignored
	// (not of duplicates), after it is applied and before it is marked
	// recorded, so what it writes (audit entries, readiness notices) is not
	// lost to a stop in between: a retry of the delivery tells it again.
	// It must be durable when it returns.
	OnOutcome func(ctx context.Context, o Outcome)
	// Now defaults to time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Receiver handles one tenant's deliveries. It is safe for concurrent use.
type Receiver struct {
	cfg Config
	// refusals and unusable limit the logging of refused deliveries and
	// of unusable secrets, which anyone can cause, to a line a minute.
	refusals, unusable everyMinute
}

// everyMinute lets a log line through at most once a minute, counting the
// ones it holds back. Safe for concurrent use.
type everyMinute struct {
	mu         sync.Mutex
	next       time.Time
	suppressed int
}

// allow reports whether to log at now, and how many lines were held back
// since the last one logged.
func (e *everyMinute) allow(now time.Time) (ok bool, suppressed int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if now.Before(e.next) {
		e.suppressed++
		return false, 0
	}
	e.next, suppressed, e.suppressed = now.Add(time.Minute), e.suppressed, 0
	return true, suppressed
}

// NewReceiver returns a receiver configured by cfg.
func NewReceiver(cfg Config) *Receiver {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Receiver{cfg: cfg}
}

// Secrets reads the receiver's secrets now (see Config.Secrets), for a
// check at start-up.
func (r *Receiver) Secrets() ([][]byte, error) { return r.cfg.Secrets() }

// Tenant is the receiver's tenant.
func (r *Receiver) Tenant() string { return r.cfg.Tenant }

// Receive verifies and handles one delivery: signature first (an error
// wrapping ErrBadSignature or ErrStale, changing nothing), then the body (an
// error wrapping ErrMalformed, changing nothing), then its effect, once.
func (r *Receiver) Receive(ctx context.Context, signature string, body []byte) (Outcome, error) {
	now := r.cfg.Now()
	sig, err := ParseSignature(signature)
	if err != nil {
		r.refused(now, err)
		return Outcome{}, err
	}
	secrets, err := r.cfg.Secrets()
	if len(secrets) == 0 {
		if err == nil {
			err = errors.New("no webhook secret")
		}
		if ok, n := r.unusable.allow(now); ok {
			r.cfg.Logger.Error("webhook refused: no usable webhook secret", "err", err, "suppressed", n)
		}
		return Outcome{}, fmt.Errorf("%w: no usable webhook secret is configured", ErrBadSignature)
	}
	if err != nil {
		if ok, n := r.unusable.allow(now); ok {
			r.cfg.Logger.Warn("a webhook secret is unusable; the other one is used", "err", err, "suppressed", n)
		}
	}
	if err := sig.Verify(body, secrets, now); err != nil {
		r.refused(now, err)
		return Outcome{}, err
	}
	ev, err := Parse(body)
	if err != nil {
		r.refused(now, err)
		return Outcome{}, err
	}
	d := Delivery{Tenant: r.cfg.Tenant, Digest: ev.Digest, At: now, Expires: now.Add(Retention)}
	out := Outcome{Tenant: r.cfg.Tenant, Event: ev, Status: Processed}
	switch {
	case (ev.Kind == UserGone && ev.User == groups.User{}) || (ev.Kind == UserUpdated && (ev.User.ID == "" || ev.User.Email == "")):
		out.Status = Ignored
	case ev.Kind == UserGone:
		u := ev.User
		d.Gone = &u
	case ev.Kind == UserUpdated:
		u := ev.User
		d.Changed = &u
	}
	log := r.cfg.Logger.With("event", ev.Type, "delivery", hex.EncodeToString(ev.Digest[:8]))
	out.Applied, err = Apply(ctx, r.cfg.Store, d)
	switch {
	case errors.Is(err, ErrDuplicate):
		log.Info("webhook delivery repeated: already processed, nothing changes")
		out.Status, out.Applied = Duplicate, Applied{}
		return out, nil
	case err != nil:
		return Outcome{}, fmt.Errorf("apply webhook %s: %w", ev.Type, err)
	}
	switch out.Status {
	case Ignored:
		log.Warn("webhook delivery names no usable user: acknowledged and ignored")
	default:
		switch ev.Kind {
		case UserGone:
			log.Info("webhook: user deleted in TechPass; removed from the mirror", "user", ev.User.ID, "groups", len(out.Applied.Left))
		case UserUpdated:
			log.Info("webhook: user updated in TechPass; the mirror follows", "user", ev.User.ID)
		case CredentialsExpiring:
			log.Warn("webhook: TechPass says the tenant's application credentials are about to expire: rotate them")
		case ApplicationDeleted:
			log.Warn("webhook: TechPass says the tenant's application was deleted: upstream calls will fail")
		default:
			log.Info("webhook event not handled by the gateway: acknowledged")
		}
	}
	if out.Applied.Resumed {
		log.Warn("webhook delivery applied before a restart, its outcome not recorded: recording it now")
	}
	if r.cfg.OnOutcome != nil {
		r.cfg.OnOutcome(ctx, out)
	}
	// Only now are repeats duplicates: a stop before this line leaves the
	// delivery to be recorded when TechPass retries it (it got no answer).
	if err := Recorded(context.WithoutCancel(ctx), r.cfg.Store, r.cfg.Tenant, ev.Digest); err != nil {
		log.Error("webhook delivery recorded but not marked so: a retry would record it again", "err", err)
	}
	return out, nil
}

// refused logs a refused delivery, at most once a minute.
func (r *Receiver) refused(now time.Time, err error) {
	if ok, n := r.refusals.allow(now); ok {
		r.cfg.Logger.Warn("webhook refused (further refusals are logged at most once a minute)", "err", err, "suppressed", n)
	}
}
