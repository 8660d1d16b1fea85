package techpasssim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// DefaultRetryAfter is the Retry-After of an injected 429 when
// Faults.RetryAfter is zero.
const DefaultRetryAfter = time.Second

// Faults are failures the simulator injects into Automation API requests
// that passed the API key, rate and bearer checks, and into token requests.
// The zero value injects nothing.
//
// Over JSON (PUT /_sim/faults) durations are Go duration strings such as
// "250ms"; rates are numbers in [0, 1].
type Faults struct {
	// ServerErrorRate is the probability of answering 500, 502 or 503
	// (chosen uniformly) instead of serving the request.
	ServerErrorRate float64
	// ThrottleRate is the probability of answering 429 with Retry-After
	// (counted as throttled, not as a violation). ServerErrorRate +
	// ThrottleRate must not exceed 1.
	ThrottleRate float64
	// RetryAfter is the Retry-After of injected 429s; zero means
	// DefaultRetryAfter.
	RetryAfter time.Duration
	// LatencyMin and LatencyMax bound a uniformly drawn delay added to every
	// request while it counts as in flight. Real time, not Config.Now.
	LatencyMin, LatencyMax time.Duration
	// TokenOutage makes the token endpoint answer 503
	// temporarily_unavailable.
	TokenOutage bool
	// TokenOutageUntil makes the token endpoint answer 503
	// temporarily_unavailable until this instant (by Config.Now): an outage
	// window that ends by itself. The zero time means none.
	TokenOutageUntil time.Time
	// TokenLifetime, when non-zero, replaces Config.TokenLifetime for the
	// tokens issued from now on (tokens already issued keep their expiry),
	// so a test can make tokens short-lived at run time. It must be zero or
	// at least one second.
	TokenLifetime time.Duration
}

// tokenOutage reports whether the token endpoint is down at now.
func (f Faults) tokenOutage(now time.Time) bool {
	return f.TokenOutage || (!f.TokenOutageUntil.IsZero() && now.Before(f.TokenOutageUntil))
}

// Validate reports every problem with f at once, wrapped in
// ErrInvalidFaults.
func (f Faults) Validate() error {
	var errs []error
	inUnit := func(p float64) bool { return p >= 0 && p <= 1 } // false for NaN
	if !inUnit(f.ServerErrorRate) {
		errs = append(errs, errors.New("serverErrorRate must be within [0, 1]"))
	}
	if !inUnit(f.ThrottleRate) {
		errs = append(errs, errors.New("throttleRate must be within [0, 1]"))
	}
	if inUnit(f.ServerErrorRate) && inUnit(f.ThrottleRate) && f.ServerErrorRate+f.ThrottleRate > 1 {
		errs = append(errs, errors.New("serverErrorRate + throttleRate must not exceed 1"))
	}
	if f.TokenLifetime < 0 || (f.TokenLifetime > 0 && f.TokenLifetime < time.Second) {
		errs = append(errs, errors.New("tokenLifetime must be zero (the configured lifetime) or at least 1s"))
	}
	if f.RetryAfter < 0 || f.LatencyMin < 0 || f.LatencyMax < 0 {
		errs = append(errs, errors.New("durations must not be negative"))
	}
	if f.LatencyMax < f.LatencyMin {
		errs = append(errs, errors.New("latencyMax must not be less than latencyMin"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalidFaults, errors.Join(errs...))
	}
	return nil
}

// faultsJSON is the wire form of Faults.
type faultsJSON struct {
	ServerErrorRate float64 `json:"serverErrorRate"`
	ThrottleRate    float64 `json:"throttleRate"`
	RetryAfter      string  `json:"retryAfter,omitempty"`
	LatencyMin      string  `json:"latencyMin,omitempty"`
	LatencyMax      string  `json:"latencyMax,omitempty"`
	TokenOutage     bool    `json:"tokenOutage"`
	// TokenOutageUntil is RFC 3339; empty means none.
	TokenOutageUntil string `json:"tokenOutageUntil,omitempty"`
	TokenLifetime    string `json:"tokenLifetime,omitempty"`
}

// MarshalJSON encodes f with durations as Go duration strings.
func (f Faults) MarshalJSON() ([]byte, error) {
	str := func(d time.Duration) string {
		if d == 0 {
			return ""
		}
		return d.String()
	}
	return json.Marshal(faultsJSON{
		ServerErrorRate: f.ServerErrorRate,
		ThrottleRate:    f.ThrottleRate,
		RetryAfter:      str(f.RetryAfter),
		LatencyMin:      str(f.LatencyMin),
		LatencyMax:      str(f.LatencyMax),
		TokenOutage:     f.TokenOutage,
		TokenOutageUntil: func() string {
			if f.TokenOutageUntil.IsZero() {
				return ""
			}
			return f.TokenOutageUntil.Format(time.RFC3339Nano)
		}(),
		TokenLifetime: str(f.TokenLifetime),
	})
}

// UnmarshalJSON decodes f from its wire form; a missing or empty duration
// is zero, and an unknown field (a typo) is an error. It does not validate:
// call Validate.
func (f *Faults) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var j faultsJSON
	if err := dec.Decode(&j); err != nil {
		return err
	}
	var errs []error
	dur := func(name, s string) time.Duration {
		if s == "" {
			return 0
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
		return d
	}
	var until time.Time
	if j.TokenOutageUntil != "" {
		t, err := time.Parse(time.RFC3339Nano, j.TokenOutageUntil)
		if err != nil {
			errs = append(errs, fmt.Errorf("tokenOutageUntil: %w", err))
		}
		until = t
	}
	out := Faults{
		ServerErrorRate:  j.ServerErrorRate,
		ThrottleRate:     j.ThrottleRate,
		RetryAfter:       dur("retryAfter", j.RetryAfter),
		LatencyMin:       dur("latencyMin", j.LatencyMin),
		LatencyMax:       dur("latencyMax", j.LatencyMax),
		TokenOutage:      j.TokenOutage,
		TokenOutageUntil: until,
		TokenLifetime:    dur("tokenLifetime", j.TokenLifetime),
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	*f = out
	return nil
}

// fault is what fault injection decided for one request.
type fault struct {
	status     int // 0: serve normally
	retryAfter time.Duration
	latency    time.Duration
}

// drawFault decides the fault for one request. Call with s.mu held.
func (s *Simulator) drawFault() fault {
	f := s.faults
	var out fault
	if f.LatencyMax > 0 {
		out.latency = f.LatencyMin
		if spread := f.LatencyMax - f.LatencyMin; spread > 0 {
			out.latency += time.Duration(s.rng.Int64N(int64(spread) + 1))
		}
	}
	if f.ServerErrorRate == 0 && f.ThrottleRate == 0 {
		return out
	}
	switch u := s.rng.Float64(); {
	case u < f.ServerErrorRate:
		statuses := [...]int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable}
		out.status = statuses[s.rng.IntN(len(statuses))]
	case u < f.ServerErrorRate+f.ThrottleRate:
		out.status = http.StatusTooManyRequests
		out.retryAfter = f.RetryAfter
		if out.retryAfter == 0 {
			out.retryAfter = DefaultRetryAfter
		}
	}
	return out
}

// serverErrorMessage is the body AWS API Gateway gives an injected server
// error.
func serverErrorMessage(status int) string {
	if status == http.StatusServiceUnavailable {
		return "Service Unavailable"
	}
	return "Internal server error"
}
