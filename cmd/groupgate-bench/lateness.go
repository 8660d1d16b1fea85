package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/groupgate/groupgate/tenants"
)

// latenessMetric is the server's histogram of how late upstream requests
// start after their planned start.
const latenessMetric = "groupgate_upstream_start_lateness_seconds"

// Lateness summarizes the rate tenant's latenessMetric over the whole run,
// read from the server's /metrics: quantiles are the upper bounds of the
// histogram buckets that hold them.
type Lateness struct {
	Count  uint64  `json:"count"`
	MeanMs float64 `json:"meanMs"`
	P50Ms  float64 `json:"p50Ms"`
	P99Ms  float64 `json:"p99Ms"`
	P999Ms float64 `json:"p999Ms"`
	// Above counts the requests later than each bound (ms, as text).
	Above map[string]uint64 `json:"above"`
}

// withOperatorKey gives the server a bootstrap operator key, kept by the
// harness to read /metrics.
func (h *harness) withOperatorKey() (file string, err error) {
	key, _ := tenants.NewKey()
	file = filepath.Join(h.dir, "operator.key")
	if err := os.WriteFile(file, []byte(key+"\n"), 0o600); err != nil {
		return "", err
	}
	h.keys["operator"] = key
	return file, nil
}

// lateness reads the rate tenant's lateness histogram from /metrics. Each
// replica counts the requests it sent while it led the tenant; with several
// it returns the histogram of the one that sent the most.
func (h *harness) lateness(ctx context.Context) (*Lateness, error) {
	var best *Lateness
	var errs []error
	for _, base := range h.bases {
		l, err := h.latenessAt(ctx, base)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if best == nil || l.Count > best.Count {
			best = l
		}
	}
	if best == nil {
		return nil, errors.Join(errs...)
	}
	return best, nil
}

// latenessAt reads the histogram of the replica at base.
func (h *harness) latenessAt(ctx context.Context, base string) (*Lateness, error) {
	r, err := h.doAt(ctx, base, http.MethodGet, "/metrics", "operator", nil)
	if err != nil {
		return nil, err
	}
	if r.status != http.StatusOK {
		return nil, fmt.Errorf("metrics: HTTP %d", r.status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(r.body))
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	f := fams[latenessMetric]
	if f == nil {
		return nil, fmt.Errorf("metrics: no %s", latenessMetric)
	}
	for _, m := range f.GetMetric() {
		if len(m.GetLabel()) != 1 || m.GetLabel()[0].GetValue() != rateTenant {
			continue
		}
		hist := m.GetHistogram()
		l := &Lateness{Count: hist.GetSampleCount(), Above: map[string]uint64{}}
		if l.Count == 0 {
			return l, nil
		}
		l.MeanMs = hist.GetSampleSum() / float64(l.Count) * 1000
		type bucket struct {
			upper float64
			cum   uint64
		}
		var bs []bucket
		for _, b := range hist.GetBucket() {
			bs = append(bs, bucket{b.GetUpperBound(), b.GetCumulativeCount()})
		}
		bs = append(bs, bucket{math.Inf(1), l.Count})
		slices.SortFunc(bs, func(a, b bucket) int { return int(a.cum) - int(b.cum) })
		q := func(p float64) float64 {
			need := uint64(math.Ceil(p * float64(l.Count)))
			for _, b := range bs {
				if b.cum >= need {
					return b.upper * 1000
				}
			}
			return math.Inf(1)
		}
		l.P50Ms, l.P99Ms, l.P999Ms = q(0.5), q(0.99), q(0.999)
		for _, b := range bs {
			if !math.IsInf(b.upper, 1) && b.upper >= 0.0005 && b.upper <= 0.02 {
				l.Above[fmt.Sprintf("%g", b.upper*1000)] = l.Count - b.cum
			}
		}
		return l, nil
	}
	return nil, fmt.Errorf("metrics: no %s series for %s", latenessMetric, rateTenant)
}

// slack returns, for each gap at the simulator's listener, how much longer
// than the interval it was: the part of the pace guard that jitter left.
func slack(gaps []time.Duration, interval time.Duration) (minMs, p001Ms, p01Ms float64) {
	if len(gaps) == 0 {
		return 0, 0, 0
	}
	s := make([]time.Duration, len(gaps))
	for i, g := range gaps {
		s[i] = g - interval
	}
	slices.Sort(s)
	at := func(frac float64) float64 {
		i := int(math.Ceil(frac*float64(len(s)))) - 1
		return ms(s[max(min(i, len(s)-1), 0)])
	}
	return ms(s[0]), at(0.001), at(0.01)
}
