package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Report is everything one run measured.
type Report struct {
	Machine  Machine         `json:"machine"`
	Command  string          `json:"command"`
	Rate     *RateResult     `json:"rate,omitempty"`
	Fairness *FairnessResult `json:"fairness,omitempty"`
	Enqueue  *EnqueueResult  `json:"enqueue,omitempty"`
	// Store and Replicas: the backend measured and how many servers
	// shared it.
	Store    string      `json:"store"`
	Replicas int         `json:"replicas"`
	List     *ListResult `json:"list,omitempty"`
}

// Machine describes where the run happened.
type Machine struct {
	Date       string `json:"date"`
	GoVersion  string `json:"goVersion"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	CPU        string `json:"cpu"`
	NumCPU     int    `json:"numCPU"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	// LoadStart and LoadEnd are /proc/loadavg's 1, 5 and 15 minute load
	// averages when the run began and ended: other work on the machine
	// skews every number.
	LoadStart string `json:"loadStart"`
	LoadEnd   string `json:"loadEnd"`
}

func thisMachine(now time.Time) Machine {
	return Machine{
		Date: now.UTC().Format(time.RFC3339), GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH,
		CPU: cpuModel(), NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0),
		LoadStart: loadAvg(),
	}
}

// loadAvg returns the three load averages of /proc/loadavg, or "unknown".
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}

// cpuModel reads the first "model name" of /proc/cpuinfo, or "unknown".
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// Check is one target and whether the run met it.
type Check struct {
	Target string `json:"target"`
	Met    bool   `json:"met"`
}

func check(met bool, format string, a ...any) Check {
	return Check{Target: fmt.Sprintf(format, a...), Met: met}
}

// Checks returns every check of the report, in section order.
func (r *Report) Checks() []Check {
	var out []Check
	if r.Rate != nil {
		out = append(out, r.Rate.Checks...)
	}
	if r.Fairness != nil {
		out = append(out, r.Fairness.Checks...)
	}
	if r.Enqueue != nil {
		out = append(out, r.Enqueue.Checks...)
	}
	if r.List != nil {
		out = append(out, r.List.Checks...)
	}
	return out
}

// WriteText prints the report for people.
func (r *Report) WriteText(w io.Writer) {
	m := r.Machine
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	p("groupgate benchmark, %s", m.Date)
	p("  machine  %s, %d CPUs (GOMAXPROCS %d), %s %s/%s", m.CPU, m.NumCPU, m.GOMAXPROCS, m.GoVersion, m.OS, m.Arch)
	p("  command  %s", r.Command)
	p("  store    %s, %d replica(s)", r.Store, r.Replicas)
	p("  load     %s at the start, %s at the end (1, 5, 15 min)", m.LoadStart, m.LoadEnd)
	if x := r.Rate; x != nil {
		p("")
		p("Upstream rate under a standing backlog (interval %s + pace guard %s)", fmtMs(x.IntervalMs), fmtMs(x.PaceGuardMs))
		p("  window              %.1f s: %d requests over %.3f s, first start to last", x.WindowS, x.Requests, x.SpanS)
		p("  achieved rate       %.4f/s of a %.4f/s limit = %.4f of the limit", x.Rate, x.Limit, x.RateRatio)
		p("  min gap             %.3f ms (simulator, whole run)", x.MinGapMs)
		p("  gaps in window      p50 %.3f ms, mean %.3f ms, max %.3f ms; %d below the interval (at the listener)", x.GapP50Ms, x.GapMeanMs, x.GapMaxMs, x.GapsBelowInterval)
		p("  slack (gap - interval) min %.3f ms, 0.1th percentile %.3f ms, 1st percentile %.3f ms (at the listener)", x.SlackMinMs, x.SlackP001Ms, x.SlackP01Ms)
		if l := x.Lateness; l != nil {
			p("  start lateness      %d requests: mean %.3f ms, p50 <= %g ms, p99 <= %g ms, p99.9 <= %g ms; later than (ms): %v (server metric)", l.Count, l.MeanMs, l.P50Ms, l.P99Ms, l.P999Ms, l.Above)
		}
		p("  max in flight       %d", x.MaxInFlight)
		p("  connections opened  %d during the window (to the simulator, by every client)", x.UpstreamConns)
		p("  violations          %d", x.Violations)
		p("  backlog waiting     min %d, max %d (%d creates queued in all)", x.BacklogMin, x.BacklogMax, x.Enqueued)
	}
	if x := r.Fairness; x != nil {
		p("")
		p("Fairness (interval %s): project BIG queues %d creates (in %.0f ms), then project SMALL queues %d", fmtMs(x.IntervalMs), x.BigOps, x.BigEnqueueMs, x.SmallOps)
		p("  SMALL positions     %v at submission", x.SmallPositions)
		p("  SMALL finished at   %v intervals after its submission", x.SmallDoneIntervals)
		p("  all SMALL done      %.2f intervals (%.3f s); BIG got %d turns meanwhile", x.AllDoneIntervals, x.AllDoneS, x.BigServedMeanwhile)
	}
	if x := r.Enqueue; x != nil {
		p("")
		p("Durable enqueue: %d writers x %d HTTP creates (POST, answered 202 after the fsync), %d tenants", x.Writers, x.OpsPerWriter, x.Tenants)
		p("  latency             p50 %.3f ms, p90 %.3f ms, p99 %.3f ms, max %.3f ms, mean %.3f ms", x.P50Ms, x.P90Ms, x.P99Ms, x.MaxMs, x.MeanMs)
		p("  throughput          %.0f creates/s (%d in all): the writers keep the CPUs busy, so latency ~ writers / throughput", x.Throughput, x.Ops)
		if y := x.Paced; y != nil {
			p("  paced at %.0f/s      p50 %.3f ms, p90 %.3f ms, p99 %.3f ms, max %.3f ms (%d creates, timed from when each was due)", y.RatePerS, y.P50Ms, y.P90Ms, y.P99Ms, y.MaxMs, y.Ops)
		}
	}
	if x := r.List; x != nil {
		p("")
		p("Cached list vs bare Echo: GET .../groups (%d groups, %d bytes), %d clients, %.1f s each, alternating", x.Groups, x.BodyBytes, x.Concurrency, x.DurationS)
		p("  gateway (cached)    %8.0f req/s  p50 %6.0f us  p99 %6.0f us  (%d errors)", x.CachedRPS, x.CachedP50Us, x.CachedP99Us, x.CachedErrors)
		p("  bare echo           %8.0f req/s  p50 %6.0f us  p99 %6.0f us  (%d errors)", x.BareRPS, x.BareP50Us, x.BareP99Us, x.BareErrors)
		p("  ratio               %.3f", x.Ratio)
	}
	p("")
	p("Targets")
	for _, c := range r.Checks() {
		mark := "met   "
		if !c.Met {
			mark = "MISSED"
		}
		p("  %s  %s", mark, c.Target)
	}
}

func fmtMs(v float64) string { return time.Duration(v * float64(time.Millisecond)).String() }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// distribution summarizes durations.
type distribution struct {
	p50, p90, p99, max, mean time.Duration
}

// summarize returns the nearest-rank percentiles, maximum and mean of ds
// (zero for none). It sorts ds.
func summarize(ds []time.Duration) distribution {
	if len(ds) == 0 {
		return distribution{}
	}
	slices.Sort(ds)
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return distribution{
		p50: percentile(ds, 50), p90: percentile(ds, 90), p99: percentile(ds, 99),
		max: ds[len(ds)-1], mean: sum / time.Duration(len(ds)),
	}
}

// percentile is the nearest-rank p-th percentile of sorted ds.
func percentile(sorted []time.Duration, p int) time.Duration {
	i := (p*len(sorted)+99)/100 - 1
	return sorted[max(min(i, len(sorted)-1), 0)]
}
