// Package ratelimit limits the API's ingress: a token bucket per
// credential (after authentication) or, for calls without one, per remote
// address. A refusal is a 429 with Retry-After; every answer describes the
// limit in the RateLimit-Policy and RateLimit headers (IETF httpapi
// ratelimit-headers). The limit is per process.
package ratelimit

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/time/rate"

	"github.com/groupgate/groupgate/api"
)

// Limiter limits each caller's request rate with a token bucket
// (golang.org/x/time/rate). Buckets of callers idle for a while are
// dropped. Create with New; safe for concurrent use.
type Limiter struct {
	limit  rate.Limit
	burst  int
	now    func() time.Time
	policy string

	mu       sync.Mutex
	limiters map[string]*limiterEntry
	swept    time.Time
}

type limiterEntry struct {
	lim  *rate.Limiter
	used time.Time
}

// New returns a limiter of rps requests per second per caller, with bursts
// of up to burst requests; now is the clock.
func New(rps float64, burst int, now func() time.Time) *Limiter {
	return &Limiter{
		limit: rate.Limit(rps), burst: burst, now: now, limiters: map[string]*limiterEntry{},
		// IETF httpapi ratelimit-headers: quota per window of one second.
		policy: fmt.Sprintf(`"default";q=%d;w=1`, int(math.Max(1, math.Round(rps)))),
	}
}

// take spends one token of actor's bucket at now. It returns whether the
// request may go on, how many whole tokens are left, and how long until the
// next token (the wait when refused).
func (l *Limiter) take(actor string, now time.Time) (ok bool, remaining int, wait time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > time.Minute {
		for k, e := range l.limiters {
			if now.Sub(e.used) > 10*time.Minute {
				delete(l.limiters, k)
			}
		}
		l.swept = now
	}
	e := l.limiters[actor]
	if e == nil && len(l.limiters) >= maxLimiters {
		actor = "" // a flood of new callers shares one bucket: the state stays bounded
		e = l.limiters[actor]
	}
	if e == nil {
		e = &limiterEntry{lim: rate.NewLimiter(l.limit, l.burst)}
		l.limiters[actor] = e
	}
	e.used = now
	r := e.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, 0, d
	}
	tokens := e.lim.TokensAt(now)
	if tokens >= 1 {
		return true, int(tokens), 0
	}
	return true, 0, time.Duration((1 - tokens) / float64(l.limit) * float64(time.Second))
}

// maxLimiters bounds the callers remembered at once.
const maxLimiters = 10000

// ByRemoteIP is the middleware for calls without a credential (TechPass's
// webhook deliveries): the same limit, per remote IP address (the
// connection's, not a header's, which anyone can set).
func (l *Limiter) ByRemoteIP() echo.MiddlewareFunc {
	return l.keyed(func(c echo.Context) string {
		host, _, err := net.SplitHostPort(c.Request().RemoteAddr)
		if err != nil {
			host = c.Request().RemoteAddr
		}
		return "ip:" + host
	})
}

// PerCredential refuses requests over the caller's rate with 429 and
// Retry-After, and describes the limit on every answer. The caller is the
// authenticated principal (api.PrincipalActor): it must run after
// authentication.
func (l *Limiter) PerCredential() echo.MiddlewareFunc {
	return l.keyed(api.PrincipalActor)
}

func (l *Limiter) keyed(key func(echo.Context) string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			actor := key(c)
			ok, remaining, wait := l.take(actor, l.now())
			h := c.Response().Header()
			h.Set("RateLimit-Policy", l.policy)
			reset := int(math.Ceil(wait.Seconds()))
			h.Set("RateLimit", `"default";r=`+strconv.Itoa(remaining)+`;t=`+strconv.Itoa(reset))
			if !ok {
				h.Set(echo.HeaderRetryAfter, strconv.Itoa(max(reset, 1)))
				return ErrLimited
			}
			return next(c)
		}
	}
}

// ErrLimited is the refusal: an *api.Error the error handler answers 429.
var ErrLimited = &api.Error{Status: http.StatusTooManyRequests, Title: "Too many requests",
	Detail: "This credential is over its request rate; retry after the time in Retry-After."}
