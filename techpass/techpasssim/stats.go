package techpasssim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"time"

	"github.com/groupgate/groupgate/techpass"
)

// Counters are the event counts the simulator keeps, per namespace and in
// total.
type Counters struct {
	// Requests counts Automation API requests that passed the API key check.
	Requests int `json:"requests"`
	// Violations counts requests refused with 429 because they arrived
	// sooner than the interval after the previous start, or while another
	// request was in flight: breaches of TechPass's rules by the client.
	Violations int `json:"violations"`
	// Throttled counts injected 429s (Faults.ThrottleRate).
	Throttled int `json:"throttled"`
	// ServerErrors counts injected 5xx answers (Faults.ServerErrorRate).
	ServerErrors int `json:"serverErrors"`
	// Unauthorized counts 401s: a bearer token missing, unknown, expired or
	// issued for another namespace.
	Unauthorized int `json:"unauthorized"`
	// TokenRequests counts token endpoint requests.
	TokenRequests int `json:"tokenRequests"`
	// TokenFailures counts token endpoint requests that got no token.
	TokenFailures int `json:"tokenFailures"`
	// DuplicateCreates counts create-group requests refused with 409
	// because the name existed.
	DuplicateCreates int `json:"duplicateCreates"`
}

func (c *Counters) add(o Counters) {
	c.Requests += o.Requests
	c.Violations += o.Violations
	c.Throttled += o.Throttled
	c.ServerErrors += o.ServerErrors
	c.Unauthorized += o.Unauthorized
	c.TokenRequests += o.TokenRequests
	c.TokenFailures += o.TokenFailures
	c.DuplicateCreates += o.DuplicateCreates
}

// NamespaceStats are the statistics of one namespace.
type NamespaceStats struct {
	Counters
	// InFlight is how many Automation API requests are being answered now.
	InFlight int `json:"inFlight"`
	// MaxInFlight is the most requests ever in flight at once, counting a
	// violating request while it is answered: 2 or more means the client
	// overlapped requests.
	MaxInFlight int `json:"maxInFlight"`
	// MinGapMs is the smallest gap, in milliseconds, between the arrivals of
	// two consecutive requests (violating ones included); nil until two
	// requests arrived.
	MinGapMs *float64 `json:"minGapMs,omitempty"`
	// LastStart is when the last request that was not a violation arrived.
	LastStart *time.Time `json:"lastStart,omitempty"`
	// CreatesByName counts, per group name, how many times a group of that
	// name was created; any count above 1 means it was created twice.
	CreatesByName map[string]int `json:"createsByName"`
	// ByRoute counts Requests per route of techpass.Routes (only routes
	// requested at least once appear; their sum is Requests), so a test can
	// assert that an operation made no call to, say, listMembers.
	ByRoute map[techpass.RouteName]int `json:"byRoute"`
}

// MinGap returns MinGapMs as a duration, and false if fewer than two
// requests arrived.
func (n NamespaceStats) MinGap() (time.Duration, bool) {
	if n.MinGapMs == nil {
		return 0, false
	}
	return time.Duration(*n.MinGapMs * float64(time.Millisecond)), true
}

// Totals are the counters summed over all namespaces, plus the events that
// belong to no namespace.
type Totals struct {
	Counters
	// Forbidden counts Automation API requests refused with 403: API key
	// missing or wrong, or namespace unknown. Not counted in Requests.
	Forbidden int `json:"forbidden"`
	// UnknownRoutes counts requests answered 404 because no route matched.
	UnknownRoutes int `json:"unknownRoutes"`
}

// Stats is a snapshot of the simulator's statistics, as returned by
// Simulator.Stats and GET /_sim/stats. It shares nothing with the
// simulator.
type Stats struct {
	// Namespaces holds one entry per registered namespace.
	Namespaces map[string]NamespaceStats `json:"namespaces"`
	// Totals sums the namespaces and adds what belongs to none.
	Totals Totals `json:"totals"`
}

// namespaceCounters is what a namespace accumulates. Guarded by
// Simulator.mu.
type namespaceCounters struct {
	Counters
	maxInFlight   int
	minGap        time.Duration
	hasMinGap     bool
	createsByName map[string]int
	byRoute       map[techpass.RouteName]int
}

// newNamespaceCounters returns zero counters, with maxInFlight requests
// already seen in flight at once.
func newNamespaceCounters(maxInFlight int) namespaceCounters {
	return namespaceCounters{
		maxInFlight:   maxInFlight,
		createsByName: make(map[string]int),
		byRoute:       make(map[techpass.RouteName]int),
	}
}

// otherCounters are events that belong to no namespace. Guarded by
// Simulator.mu.
type otherCounters struct {
	tokenRequests, tokenFailures int
	forbidden, unknownRoutes     int
}

// Stats returns a deep copy of the current statistics.
func (s *Simulator) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{Namespaces: make(map[string]NamespaceStats, len(s.namespaces))}
	for name, ns := range s.namespaces {
		c := ns.stats
		out := NamespaceStats{
			Counters:      c.Counters,
			InFlight:      ns.rate.inFlight,
			MaxInFlight:   c.maxInFlight,
			CreatesByName: maps.Clone(c.createsByName),
			ByRoute:       maps.Clone(c.byRoute),
		}
		if c.hasMinGap {
			ms := float64(c.minGap) / float64(time.Millisecond)
			out.MinGapMs = &ms
		}
		if ns.rate.started {
			t := ns.rate.lastStart
			out.LastStart = &t
		}
		st.Namespaces[name] = out
		st.Totals.add(c.Counters)
	}
	st.Totals.TokenRequests += s.other.tokenRequests
	st.Totals.TokenFailures += s.other.tokenFailures
	st.Totals.Forbidden = s.other.forbidden
	st.Totals.UnknownRoutes = s.other.unknownRoutes
	return st
}

// ResetStats zeroes every counter and forgets the gaps measured so far. It
// keeps what enforcement needs: the last start of each namespace and the
// requests in flight (MaxInFlight restarts from InFlight), so a reset never
// excuses a violation.
func (s *Simulator) ResetStats() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ns := range s.namespaces {
		ns.stats = newNamespaceCounters(ns.rate.inFlight)
		ns.rate.arrived = false
	}
	s.other = otherCounters{}
}

// FetchStats reads the statistics of a simulator served at baseURL (GET
// /_sim/stats), for tests running in another process. A nil c means
// http.DefaultClient.
func FetchStats(ctx context.Context, baseURL string, c *http.Client) (Stats, error) {
	if c == nil {
		c = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(baseURL, "/")+"/_sim/stats", nil)
	if err != nil {
		return Stats{}, fmt.Errorf("techpasssim: fetch stats: %w", err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return Stats{}, fmt.Errorf("techpasssim: fetch stats: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		return Stats{}, fmt.Errorf("techpasssim: fetch stats: unexpected status %s", resp.Status)
	}
	var st Stats
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<24)).Decode(&st); err != nil {
		return Stats{}, fmt.Errorf("techpasssim: fetch stats: decode: %w", err)
	}
	return st, nil
}
