// Package stats is the one percentile of the repository's benchmarks and
// load reports: the nearest-rank quantile, which always returns a sample
// that was observed, so a p99 is a latency that really happened, never an
// interpolation between two. It is a leaf: it imports nothing of this
// module, so every test and benchmark (kernel's included) may use it.
package stats

import (
	"math"
	"slices"
	"testing"
	"time"
)

// Duration is the nearest-rank q-quantile of d (0 <= q <= 1): the
// smallest sample such that at least q of all samples are <= it; 0 when d
// is empty. It sorts d in place.
func Duration(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[rank(len(d), q)]
}

// rank is the index of the nearest-rank q-quantile of n sorted samples.
func rank(n int, q float64) int {
	return min(max(int(math.Ceil(q*float64(n)))-1, 0), n-1)
}

// Report adds the p50 and p99 of a benchmark's samples in microseconds
// (p50-us, p99-us) and their count (samples): the quality gates are tail
// latencies, not means. It sorts d in place and reports nothing for none.
func Report(b *testing.B, d []time.Duration) {
	b.Helper()
	if len(d) == 0 {
		return
	}
	us := func(q float64) float64 { return float64(Duration(d, q).Nanoseconds()) / 1e3 }
	b.ReportMetric(us(0.50), "p50-us")
	b.ReportMetric(us(0.99), "p99-us")
	b.ReportMetric(float64(len(d)), "samples")
}

// Durations is one set of duration samples summarised: the nearest-rank
// p50 and p99, the mean, the extremes.
type Durations struct {
	N                        int
	P50, P99, Mean, Min, Max time.Duration
}

// Of summarises d without reordering it; an empty d gives the zero value.
func Of(d []time.Duration) Durations {
	if len(d) == 0 {
		return Durations{}
	}
	s := slices.Clone(d)
	slices.Sort(s)
	var sum time.Duration
	for _, v := range s {
		sum += v
	}
	return Durations{N: len(s), P50: s[rank(len(s), 0.50)], P99: s[rank(len(s), 0.99)], Mean: sum / time.Duration(len(s)), Min: s[0], Max: s[len(s)-1]}
}
