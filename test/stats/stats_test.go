package stats

import (
	"math"
	"testing"
	"time"
)

func TestPercentileNearestRank(t *testing.T) {
	s := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, c := range []struct {
		q, want float64
	}{
		{0, 1}, {0.1, 1}, {0.11, 2}, {0.5, 5}, {0.51, 6}, {0.9, 9}, {0.99, 10}, {1, 10},
	} {
		if got := Percentile(s, c.q); got != c.want {
			t.Errorf("Percentile(1..10, %v) = %v, want %v", c.q, got, c.want)
		}
	}
	// p99 of 1000 samples is the 990th, not the maximum: one outlier in a
	// thousand does not own the p99.
	big := make([]float64, 1000)
	for i := range big {
		big[i] = float64(i + 1)
	}
	if got := Percentile(big, 0.99); got != 990 {
		t.Errorf("p99 of 1..1000 = %v", got)
	}
	if got := Percentile([]float64{42}, 0.99); got != 42 {
		t.Errorf("single sample p99 = %v", got)
	}
	for _, q := range []float64{-0.1, 1.1, math.NaN()} {
		if got := Percentile(s, q); !math.IsNaN(got) {
			t.Errorf("Percentile(q=%v) = %v, want NaN", q, got)
		}
	}
	if got := Percentile(nil, 0.5); !math.IsNaN(got) {
		t.Errorf("empty = %v", got)
	}
}

func TestDurationSortsAndPicksASample(t *testing.T) {
	d := []time.Duration{5, 1, 4, 2, 3}
	if got := Duration(d, 0.5); got != 3 {
		t.Errorf("p50 = %v", got)
	}
	if d[0] != 1 || d[4] != 5 {
		t.Errorf("not sorted in place: %v", d)
	}
	if got := Duration(d, 0.99); got != 5 {
		t.Errorf("p99 = %v", got)
	}
	if got := Duration(nil, 0.5); got != 0 {
		t.Errorf("empty = %v", got)
	}
}
