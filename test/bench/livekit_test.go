package bench

import (
	"slices"
	"testing"
	"time"
)

func TestPairMarkers(t *testing.T) {
	t0 := time.Unix(100, 0)
	at := func(ms ...int) []time.Time {
		var ts []time.Time
		for _, m := range ms {
			ts = append(ts, t0.Add(time.Duration(m)*time.Millisecond))
		}
		return ts
	}
	// Sent at 0, 200, 400, 600; the one at 200 never arrived, and a
	// stray at 450 is not a match for 600 (too early) nor for 400 (taken).
	got, lost := pair(at(0, 200, 400, 600), at(1, 402, 450, 603))
	want := []time.Duration{time.Millisecond, 2 * time.Millisecond, 3 * time.Millisecond}
	if !slices.Equal(got, want) || lost != 1 {
		t.Fatalf("pair = %v, %d lost; want %v, 1 lost", got, lost, want)
	}
	// Beyond 150 ms is not the same marker.
	if got, lost := pair(at(0), at(151)); len(got) != 0 || lost != 1 {
		t.Fatalf("late match: %v, %d", got, lost)
	}
}

func TestMarkerTimes(t *testing.T) {
	var m markerTimes
	t0 := time.Unix(100, 0)
	loud, quiet := marker(), make([]byte, 640)
	m.frame(loud, t0)
	m.frame(loud, t0.Add(20*time.Millisecond)) // same marker (codec spread)
	m.frame(quiet, t0.Add(40*time.Millisecond))
	m.frame(loud, t0.Add(200*time.Millisecond))
	if got := m.times(); len(got) != 2 || !got[0].Equal(t0) || !got[1].Equal(t0.Add(200*time.Millisecond)) {
		t.Fatalf("marker times %v", got)
	}
}
