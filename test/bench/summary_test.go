package bench

import (
	"math"
	"testing"
	"time"
)

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
