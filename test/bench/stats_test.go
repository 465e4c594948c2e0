package bench

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

func TestSummarize(t *testing.T) {
	// Unsorted input; Summarize must sort a copy, not the caller's slice.
	d := []time.Duration{40 * time.Microsecond, 10 * time.Microsecond, 30 * time.Microsecond, 20 * time.Microsecond, 1500 * time.Nanosecond}
	s := Summarize(d)
	want := Summary{N: 5, P50us: 20, P99us: 40, MeanUs: 20.3, MinUs: 1.5, MaxUs: 40}
	if s.N != want.N || s.P50us != want.P50us || s.P99us != want.P99us || math.Abs(s.MeanUs-want.MeanUs) > 1e-9 || s.MinUs != want.MinUs || s.MaxUs != want.MaxUs {
		t.Fatalf("Summarize = %+v, want %+v", s, want)
	}
	if d[0] != 40*time.Microsecond {
		t.Fatal("Summarize reordered its input")
	}
	if z := Summarize(nil); z != (Summary{}) {
		t.Fatalf("empty = %+v", z)
	}
}

func TestRatioOf(t *testing.T) {
	r := RatioOf(Summary{P50us: 300, P99us: 900, MeanUs: 350}, Summary{P50us: 150, P99us: 300, MeanUs: 175})
	if r != (Ratio{P50: 2, P99: 3, Mean: 2}) {
		t.Fatalf("ratio = %+v", r)
	}
	if z := RatioOf(Summary{P50us: 1}, Summary{}); z != (Ratio{}) {
		t.Fatalf("zero denominator = %+v", z)
	}
}
