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

// Percentile returns the q-quantile (0 <= q <= 1) of sorted by the
// nearest-rank method: the smallest sample such that at least q of all
// samples are <= it. It returns NaN for an empty slice or q outside [0, 1].
func Percentile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 || q < 0 || q > 1 || math.IsNaN(q) {
		return math.NaN()
	}
	return sorted[rank(len(sorted), q)]
}

// Duration is the nearest-rank q-quantile of d (0 when d is empty). It
// sorts d in place.
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
