package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/groupgate/groupgate/config"
)

// Options are the benchmark's settings, one flag each.
type Options struct {
	Quick   bool
	JSON    bool
	Verbose bool
	Strict  bool
	// CPUProfile, if set, receives a CPU profile of the phases.
	CPUProfile string

	// Store is the backend: bbolt (one file) or postgres.
	Store string
	// Replicas is how many servers share the store (postgres only); the
	// phases spread their requests over them in turn.
	Replicas int
	// PostgresDSN is the database to use (empty on it: the benchmark
	// creates its tables); empty starts a throwaway cluster.
	PostgresDSN string
	// MaxConns is each replica's pool size (postgres.max_conns; 0: the
	// server's default).
	MaxConns int

	// Phases to run.
	Rate, Fairness, Enqueue, List bool

	// Rate phase.
	Interval  time.Duration
	PaceGuard time.Duration
	Duration  time.Duration
	Backlog   int

	// Fairness phase.
	FairnessInterval time.Duration
	FairBig          int
	FairSmall        int

	// Enqueue phase.
	Writers        int
	EnqueueOps     int
	EnqueueTenants int
	// EnqueueRate is the aggregate rate (creates/s) of the paced run after
	// the closed-loop one; 0 skips it.
	EnqueueRate float64

	// List phase.
	ListGroups      int
	ListConcurrency int
	ListDuration    time.Duration
}

// DefaultOptions are the settings of the full run (make bench).
func DefaultOptions() Options {
	return Options{
		Rate: true, Fairness: true, Enqueue: true, List: true,
		Store: config.StoreBbolt, Replicas: 1,
		Interval: time.Second, PaceGuard: 3 * time.Millisecond, Duration: 60 * time.Second, Backlog: 30,
		FairnessInterval: 100 * time.Millisecond, FairBig: 200, FairSmall: 5,
		Writers: 64, EnqueueOps: 50, EnqueueTenants: 64, EnqueueRate: 500,
		ListGroups: 20, ListConcurrency: 8, ListDuration: 10 * time.Second,
	}
}

// postgresEnqueueOps is the default of -enqueue-ops with -store postgres.
const postgresEnqueueOps = 200

// quickOptions replace the defaults in -quick mode, for flags not given.
// The pace guard is sized for a smoke test under -race on a busy machine,
// where the time from a request's start at the gate to its arrival upstream
// was seen to vary by up to 9 ms: the guard must cover that jitter.
var quickOptions = map[string]string{
	"interval":          "100ms",
	"pace-guard":        "25ms",
	"duration":          "3s",
	"backlog":           "10",
	"fairness-interval": "100ms",
	"enqueue-ops":       "5",
	"list-duration":     "1s",
}

// Main is the program: parse flags, run, print.
type Main struct {
	Options        Options
	stdout, stderr io.Writer
	args           []string
}

// NewMain returns a Main writing its report to stdout and its progress to
// stderr.
func NewMain(stdout, stderr io.Writer) *Main {
	return &Main{Options: DefaultOptions(), stdout: stdout, stderr: stderr}
}

// ParseFlags reads the command line into m.Options and checks it.
func (m *Main) ParseFlags(args []string) error {
	o := &m.Options
	fs := flag.NewFlagSet("groupgate-bench", flag.ContinueOnError)
	fs.SetOutput(m.stderr)
	fs.BoolVar(&o.Quick, "quick", o.Quick, "short phases (a few seconds in all), for a smoke test")
	fs.BoolVar(&o.JSON, "json", o.JSON, "print the report as JSON")
	fs.BoolVar(&o.Verbose, "v", o.Verbose, "print progress to stderr")
	fs.BoolVar(&o.Strict, "strict", o.Strict, "exit with status 3 if a target is missed")
	fs.StringVar(&o.CPUProfile, "cpuprofile", o.CPUProfile, "write a CPU profile of the phases to this file")
	fs.StringVar(&o.Store, "store", o.Store, "the store: bbolt, or postgres (a throwaway cluster unless -postgres-dsn)")
	fs.IntVar(&o.Replicas, "replicas", o.Replicas, "servers sharing the store (more than 1 needs -store postgres)")
	fs.IntVar(&o.MaxConns, "max-conns", o.MaxConns, "each server's PostgreSQL pool size (postgres.max_conns; 0: the server's default)")
	fs.StringVar(&o.PostgresDSN, "postgres-dsn", o.PostgresDSN, "an empty PostgreSQL database to use instead of a throwaway cluster")
	fs.BoolVar(&o.Rate, "rate", o.Rate, "run the upstream rate phase")
	fs.BoolVar(&o.Fairness, "fairness", o.Fairness, "run the fairness phase")
	fs.BoolVar(&o.Enqueue, "enqueue", o.Enqueue, "run the durable enqueue phase")
	fs.BoolVar(&o.List, "list", o.List, "run the cached list vs bare Echo phase")
	fs.DurationVar(&o.Interval, "interval", o.Interval, "upstream interval of the rate phase (TechPass: 1s)")
	fs.DurationVar(&o.PaceGuard, "pace-guard", o.PaceGuard, "the server's pace_guard")
	fs.DurationVar(&o.Duration, "duration", o.Duration, "length of the rate phase's measurement window")
	fs.IntVar(&o.Backlog, "backlog", o.Backlog, "operations kept waiting in the rate phase")
	fs.DurationVar(&o.FairnessInterval, "fairness-interval", o.FairnessInterval, "upstream interval of the fairness phase")
	fs.IntVar(&o.FairBig, "fairness-big", o.FairBig, "creates the large project floods the queue with")
	fs.IntVar(&o.FairSmall, "fairness-small", o.FairSmall, "creates the small project submits after the flood")
	fs.IntVar(&o.Writers, "writers", o.Writers, "concurrent writers of the enqueue phase")
	fs.IntVar(&o.EnqueueOps, "enqueue-ops", o.EnqueueOps, "creates each writer sends")
	fs.IntVar(&o.EnqueueTenants, "enqueue-tenants", o.EnqueueTenants, "tenants the writers are spread over")
	fs.Float64Var(&o.EnqueueRate, "enqueue-rate", o.EnqueueRate, "aggregate creates/s of the paced enqueue run (0: skip it)")
	fs.IntVar(&o.ListGroups, "list-groups", o.ListGroups, "groups in the listed project")
	fs.IntVar(&o.ListConcurrency, "list-concurrency", o.ListConcurrency, "concurrent clients of the list phase")
	fs.DurationVar(&o.ListDuration, "list-duration", o.ListDuration, "how long each handler is driven in the list phase")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.Quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for name, v := range quickOptions {
			if !set[name] {
				if err := fs.Set(name, v); err != nil {
					return err
				}
			}
		}
	}
	if o.Store == config.StorePostgres {
		// On PostgreSQL the paced enqueue run's target is at 200/s.
		if !isSet(fs, "enqueue-rate") {
			o.EnqueueRate = 200
		}
		// 64 x 50 creates take 3 s there, and the writers' ramp and
		// tail (the last writers finishing alone) weigh in such a short
		// window: 826 to 1,260/s from one build. 200 each make the
		// closed loop about 10 s and the paced run about a minute.
		if !isSet(fs, "enqueue-ops") {
			o.EnqueueOps = postgresEnqueueOps
		}
	}
	m.args = args
	return o.Validate()
}

// isSet reports whether the flag name was given on the command line.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// Validate reports every problem with o at once.
func (o Options) Validate() error {
	var errs []error
	if o.Interval <= 0 || o.FairnessInterval <= 0 || o.Duration <= 0 || o.ListDuration <= 0 {
		errs = append(errs, errors.New("intervals and durations must be positive"))
	}
	if o.PaceGuard < 0 {
		errs = append(errs, errors.New("-pace-guard must not be negative"))
	}
	if o.Backlog < 1 || o.FairBig < 1 || o.FairSmall < 1 || o.ListGroups < 1 || o.ListConcurrency < 1 {
		errs = append(errs, errors.New("-backlog, -fairness-big, -fairness-small, -list-groups and -list-concurrency must be at least 1"))
	}
	if o.Writers < 1 || o.EnqueueTenants < 1 || o.EnqueueTenants > o.Writers || o.EnqueueTenants > 100 {
		errs = append(errs, errors.New("-writers must be at least 1 and -enqueue-tenants between 1 and min(writers, 100)"))
	}
	// The default per-project queue limit (1000) bounds a writer's creates.
	if o.EnqueueOps < 1 || 2*o.EnqueueOps+enqueueWarmup > 1000 || o.FairBig > 1000 || o.Backlog > 1000 {
		errs = append(errs, errors.New("-enqueue-ops (1 to 499), -fairness-big and -backlog (at most 1000) must fit a project's queue"))
	}
	switch {
	case o.Store != config.StoreBbolt && o.Store != config.StorePostgres:
		errs = append(errs, fmt.Errorf("-store %q: want %s or %s", o.Store, config.StoreBbolt, config.StorePostgres))
	case o.Replicas < 1:
		errs = append(errs, errors.New("-replicas must be at least 1"))
	case o.Replicas > 1 && o.Store != config.StorePostgres:
		errs = append(errs, errors.New("-replicas above 1 needs -store postgres"))
	case o.PostgresDSN != "" && o.Store != config.StorePostgres:
		errs = append(errs, errors.New("-postgres-dsn needs -store postgres"))
	case o.MaxConns != 0 && o.Store != config.StorePostgres:
		errs = append(errs, errors.New("-max-conns needs -store postgres"))
	case o.MaxConns < 0 || o.MaxConns > 1000:
		errs = append(errs, errors.New("-max-conns must be between 0 (the server's default) and 1000"))
	}
	if o.EnqueueRate < 0 {
		errs = append(errs, errors.New("-enqueue-rate must not be negative"))
	}
	return errors.Join(errs...)
}

// Run starts the system, runs the chosen phases one after another, and
// prints the report. missed is true if a target was missed.
func (m *Main) Run(ctx context.Context) (missed bool, err error) {
	r, err := m.Measure(ctx)
	if err != nil {
		return false, err
	}
	if m.Options.JSON {
		enc := json.NewEncoder(m.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return false, err
		}
	} else {
		r.WriteText(m.stdout)
	}
	for _, c := range r.Checks() {
		missed = missed || !c.Met
	}
	return missed, nil
}

// Measure runs the phases and returns the report.
func (m *Main) Measure(ctx context.Context) (_ *Report, err error) {
	o := m.Options
	progress := func(format string, a ...any) {
		if o.Verbose {
			fmt.Fprintf(m.stderr, format+"\n", a...)
		}
	}
	specs := []tenantSpec{
		{name: rateTenant, projects: rateProjects, interval: o.Interval, groupLimit: o.Backlog + int(o.Duration/o.Interval)*2 + 100},
		{name: fairTenant, projects: []string{"BIG", "SMALL"}, interval: o.FairnessInterval, groupLimit: o.FairBig + o.FairSmall},
		{name: listTenant, projects: []string{"L"}, interval: listInterval, groupLimit: o.ListGroups},
	}
	specs = append(specs, enqueueSpecs(o)...)
	progress("starting %d server(s) on %s and the simulator", o.Replicas, o.Store)
	h, err := startHarness(ctx, o, specs)
	if err != nil {
		return nil, fmt.Errorf("start: %w", err)
	}
	defer func() {
		if cerr := h.close(); cerr != nil && err == nil {
			err = fmt.Errorf("stop: %w", cerr)
		}
	}()

	if o.CPUProfile != "" {
		f, err := os.Create(o.CPUProfile)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, err
		}
		defer pprof.StopCPUProfile()
	}
	r := &Report{
		Machine: thisMachine(time.Now()), Command: strings.TrimSpace("groupgate-bench " + strings.Join(m.args, " ")),
		Store: o.Store, Replicas: o.Replicas,
	}
	if o.Rate {
		progress("rate: standing backlog of %d at interval %v for %v", o.Backlog, o.Interval, o.Duration)
		if r.Rate, err = runRate(ctx, h, o, progress); err != nil {
			return nil, err
		}
	}
	if o.Fairness {
		progress("fairness: %d creates flood, then %d", o.FairBig, o.FairSmall)
		if r.Fairness, err = runFairness(ctx, h, o, progress); err != nil {
			return nil, err
		}
	}
	if o.Enqueue {
		progress("enqueue: %d writers x %d creates", o.Writers, o.EnqueueOps)
		if r.Enqueue, err = runEnqueue(ctx, h, o, progress); err != nil {
			return nil, err
		}
	}
	if o.List {
		progress("list: %d groups, %d clients, %v per handler", o.ListGroups, o.ListConcurrency, o.ListDuration)
		if r.List, err = runList(ctx, h, o, progress); err != nil {
			return nil, err
		}
	}
	r.Machine.LoadEnd = loadAvg()
	return r, nil
}
