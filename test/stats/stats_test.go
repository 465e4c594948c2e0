package stats

import (
	"testing"
	"time"
)

func TestDurationNearestRank(t *testing.T) {
	ten := func() []time.Duration { return []time.Duration{10, 9, 8, 7, 6, 5, 4, 3, 2, 1} }
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{
		{0, 1}, {0.1, 1}, {0.11, 2}, {0.5, 5}, {0.51, 6}, {0.9, 9}, {0.99, 10}, {1, 10},
	} {
		if got := Duration(ten(), c.q); got != c.want {
			t.Errorf("Duration(1..10, %v) = %v, want %v", c.q, got, c.want)
		}
	}
	// p99 of 1000 samples is the 990th, not the maximum: one outlier in a
	// thousand does not own the p99.
	big := make([]time.Duration, 1000)
	for i := range big {
		big[i] = time.Duration(i + 1)
	}
	if got := Duration(big, 0.99); got != 990 {
		t.Errorf("p99 of 1..1000 = %v", got)
	}
	if got := Duration([]time.Duration{42}, 0.99); got != 42 {
		t.Errorf("single sample p99 = %v", got)
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

func TestOfSummarisesWithoutReordering(t *testing.T) {
	d := []time.Duration{40, 10, 30, 20}
	s := Of(d)
	if s != (Durations{N: 4, P50: 20, P99: 40, Mean: 25, Min: 10, Max: 40}) {
		t.Fatalf("Of = %+v", s)
	}
	if d[0] != 40 {
		t.Fatal("Of reordered its input")
	}
	if Of(nil) != (Durations{}) {
		t.Fatal("empty input")
	}
}
