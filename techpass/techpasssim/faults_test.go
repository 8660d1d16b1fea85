package techpasssim_test

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate/techpass/techpasssim"
)

// runFaults sends n paced list requests to a simulator with the faults and
// seed given and returns the statuses, the Retry-After of each 429 and the
// namespace's stats.
func runFaults(t *testing.T, seed int64, f techpasssim.Faults, n int) ([]int, []string, techpasssim.NamespaceStats) {
	t.Helper()
	e := newEnv(t, techpasssim.Config{Seed: seed, Faults: f, TokenLifetime: 24 * time.Hour})
	tok := e.token(shipClient, shipSecret)
	statuses := make([]int, 0, n)
	var retryAfters []string
	for range n {
		r := e.paced(http.MethodGet, groupsPath(t, ns), shipKey, tok, nil)
		statuses = append(statuses, r.status)
		if r.status == http.StatusTooManyRequests {
			retryAfters = append(retryAfters, r.header.Get("Retry-After"))
			if r.message() != "Too Many Requests" {
				t.Errorf("429 message = %q", r.message())
			}
		}
		if r.status >= 500 && r.message() == "" {
			t.Errorf("%d without a message: %s", r.status, r.body)
		}
	}
	return statuses, retryAfters, e.sim.Stats().Namespaces[ns]
}

func TestFaultRates(t *testing.T) {
	const n = 1000
	f := techpasssim.Faults{ServerErrorRate: 0.2, ThrottleRate: 0.1, RetryAfter: 1500 * time.Millisecond}
	statuses, retryAfters, st := runFaults(t, 42, f, n)

	count := map[int]int{}
	for _, s := range statuses {
		count[s]++
	}
	serverErrors := count[500] + count[502] + count[503]
	if serverErrors+count[429]+count[200] != n {
		t.Errorf("unexpected statuses: %v", count)
	}
	near := func(name string, got int, rate float64) {
		t.Helper()
		want := rate * n
		if tolerance := 4 * math.Sqrt(want*(1-rate)); math.Abs(float64(got)-want) > tolerance {
			t.Errorf("%s = %d, want %.0f ± %.0f", name, got, want, tolerance)
		}
	}
	near("server errors", serverErrors, f.ServerErrorRate)
	near("throttled", count[429], f.ThrottleRate)
	for _, s := range []int{500, 502, 503} {
		if count[s] == 0 {
			t.Errorf("no %d among the server errors", s)
		}
	}
	for _, ra := range retryAfters {
		if ra != "2" {
			t.Fatalf("Retry-After = %q, want 2 (1.5s rounded up)", ra)
		}
	}
	if st.ServerErrors != serverErrors || st.Throttled != count[429] || st.Violations != 0 || st.Requests != n {
		t.Errorf("stats %+v disagree with the answers %v", st.Counters, count)
	}

	// The same seed gives the same faults.
	again, _, _ := runFaults(t, 42, f, 100)
	if !slices.Equal(again, statuses[:100]) {
		t.Error("the same seed gave different faults")
	}
}

func TestFaultDefaultRetryAfterAndToggle(t *testing.T) {
	statuses, retryAfters, _ := runFaults(t, 7, techpasssim.Faults{ThrottleRate: 1}, 3)
	if !slices.Equal(statuses, []int{429, 429, 429}) || !slices.Equal(retryAfters, []string{"1", "1", "1"}) {
		t.Errorf("statuses %v Retry-After %v, want 429s with Retry-After 1", statuses, retryAfters)
	}

	e := newEnv(t, techpasssim.Config{Faults: techpasssim.Faults{ServerErrorRate: 1}})
	tok := e.token(shipClient, shipSecret)
	if r := e.paced(http.MethodGet, groupsPath(t, ns), shipKey, tok, nil); r.status < 500 {
		t.Errorf("status %d, want a server error", r.status)
	}
	if err := e.sim.SetFaults(techpasssim.Faults{}); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, e.paced(http.MethodGet, groupsPath(t, ns), shipKey, tok, nil), http.StatusOK, "")
}

// TestFaultsAfterChecks shows faults are injected only after the API key,
// rate and bearer checks: those answers are never replaced by a fault.
func TestFaultsAfterChecks(t *testing.T) {
	e := newEnv(t, techpasssim.Config{Faults: techpasssim.Faults{ServerErrorRate: 1}})
	tok := e.token(shipClient, shipSecret)
	wantStatus(t, e.paced(http.MethodGet, groupsPath(t, ns), "", tok, nil), http.StatusForbidden, "Forbidden")
	wantStatus(t, e.paced(http.MethodGet, groupsPath(t, ns), shipKey, "", nil), http.StatusUnauthorized, "Unauthorized")
	wantStatus(t, e.api(http.MethodGet, groupsPath(t, ns), shipKey, tok, nil), http.StatusTooManyRequests, "Too Many Requests")
	if st := e.sim.Stats().Namespaces[ns]; st.ServerErrors != 0 || st.Violations != 1 {
		t.Errorf("server errors/violations = %d/%d, want 0/1", st.ServerErrors, st.Violations)
	}
}

func TestFaultLatency(t *testing.T) {
	const latency = 40 * time.Millisecond
	e := newEnv(t, techpasssim.Config{Faults: techpasssim.Faults{LatencyMin: latency, LatencyMax: latency}})
	tok := e.token(shipClient, shipSecret)
	start := time.Now()
	wantStatus(t, e.paced(http.MethodGet, groupsPath(t, ns), shipKey, tok, nil), http.StatusOK, "")
	if took := time.Since(start); took < latency {
		t.Errorf("request took %v, want at least %v", took, latency)
	}
}

func TestFaultsValidate(t *testing.T) {
	for name, f := range map[string]techpasssim.Faults{
		"negative rate":      {ServerErrorRate: -0.1},
		"rate over 1":        {ThrottleRate: 1.5},
		"NaN rate":           {ThrottleRate: math.NaN()},
		"rates sum over 1":   {ServerErrorRate: 0.6, ThrottleRate: 0.5},
		"negative duration":  {RetryAfter: -time.Second},
		"latency max < min":  {LatencyMin: time.Second, LatencyMax: time.Millisecond},
		"latency min only":   {LatencyMin: time.Second},
		"negative latencies": {LatencyMin: -2, LatencyMax: -1},
	} {
		t.Run(name, func(t *testing.T) {
			if err := f.Validate(); !errors.Is(err, techpasssim.ErrInvalidFaults) {
				t.Errorf("Validate = %v, want ErrInvalidFaults", err)
			}
			sim := techpasssim.New(techpasssim.Config{})
			if err := sim.SetFaults(f); !errors.Is(err, techpasssim.ErrInvalidFaults) {
				t.Errorf("SetFaults = %v, want ErrInvalidFaults", err)
			}
			if sim.CurrentFaults() != (techpasssim.Faults{}) {
				t.Error("invalid faults were applied")
			}
		})
	}
}

func TestFaultsJSON(t *testing.T) {
	f := techpasssim.Faults{ServerErrorRate: 0.25, ThrottleRate: 0.5, RetryAfter: 2 * time.Second,
		LatencyMin: 250 * time.Millisecond, LatencyMax: time.Second, TokenOutage: true}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"serverErrorRate":0.25,"throttleRate":0.5,"retryAfter":"2s","latencyMin":"250ms","latencyMax":"1s","tokenOutage":true}`
	if string(b) != want {
		t.Errorf("JSON = %s, want %s", b, want)
	}
	var back techpasssim.Faults
	if err := json.Unmarshal(b, &back); err != nil || back != f {
		t.Errorf("round trip = %+v, %v; want %+v", back, err, f)
	}
	if err := json.Unmarshal([]byte(`{"latencyMin":"soon"}`), &back); err == nil || !strings.Contains(err.Error(), "latencyMin") {
		t.Errorf("bad duration: %v, want an error naming latencyMin", err)
	}
}
