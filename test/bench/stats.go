package bench

import (
	"math"
	"time"

	"github.com/rspp/rspp/test/stats"
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
	st := stats.Of(d)
	us := func(v time.Duration) float64 { return float64(v) / float64(time.Microsecond) }
	// The mean is rounded to ns, the clock's resolution.
	return Summary{N: st.N, P50us: us(st.P50), P99us: us(st.P99), MeanUs: roundTo(us(st.Mean), 1e-3), MinUs: us(st.Min), MaxUs: us(st.Max)}
}

// roundTo rounds v to a multiple of unit, so results.json carries no float
// noise digits.
func roundTo(v, unit float64) float64 { return math.Round(v/unit) * unit }

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
