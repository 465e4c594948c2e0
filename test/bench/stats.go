package bench

import (
	"math"
	"slices"
	"time"
)

// Summary describes one set of latency samples in microseconds.
type Summary struct {
	N      int     `json:"n"`
	P50us  float64 `json:"p50_us"`
	P99us  float64 `json:"p99_us"`
	MeanUs float64 `json:"mean_us"`
	MinUs  float64 `json:"min_us"`
	MaxUs  float64 `json:"max_us"`
}

// Summarize computes the summary of d. It does not reorder d. An empty d
// gives the zero Summary.
func Summarize(d []time.Duration) Summary {
	if len(d) == 0 {
		return Summary{}
	}
	us := make([]float64, len(d))
	var sum float64
	for i, v := range d {
		us[i] = float64(v) / float64(time.Microsecond)
		sum += us[i]
	}
	slices.Sort(us)
	return Summary{
		N:      len(us),
		P50us:  Percentile(us, 0.50),
		P99us:  Percentile(us, 0.99),
		MeanUs: roundTo(sum/float64(len(us)), 1e-3), // ns: the clock's resolution
		MinUs:  us[0],
		MaxUs:  us[len(us)-1],
	}
}

// roundTo rounds v to a multiple of unit, so results.json carries no float
// noise digits.
func roundTo(v, unit float64) float64 { return math.Round(v/unit) * unit }

// Percentile returns the q-quantile (0 <= q <= 1) of sorted by the
// nearest-rank method: the smallest sample such that at least q of all
// samples are <= it. Nearest rank always returns an observed sample, so a
// p99 is a latency that really happened, never an interpolation between
// two. It returns NaN for an empty slice or q outside [0, 1].
func Percentile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 || q < 0 || q > 1 || math.IsNaN(q) {
		return math.NaN()
	}
	rank := int(math.Ceil(q * float64(len(sorted))))
	if rank < 1 {
		rank = 1
	}
	return sorted[rank-1]
}

// Ratio is num/den for each of the summary's figures; it compares two
// measurements taken in the same run.
type Ratio struct {
	P50  float64 `json:"p50"`
	P99  float64 `json:"p99"`
	Mean float64 `json:"mean"`
}

// RatioOf divides num by den figure by figure. A zero denominator gives 0
// rather than Inf, which JSON cannot carry.
func RatioOf(num, den Summary) Ratio {
	div := func(a, b float64) float64 {
		if b == 0 {
			return 0
		}
		return roundTo(a/b, 1e-4)
	}
	return Ratio{P50: div(num.P50us, den.P50us), P99: div(num.P99us, den.P99us), Mean: div(num.MeanUs, den.MeanUs)}
}
