package session

import (
	"testing"

	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/kernel/eventabi"
)

// Once a session closed, its timeline ends with a session_stats record
// carrying the kernel's counters (here the turn it opened) in snake_case.
func TestClosedSessionReportsItsCounters(t *testing.T) {
	pools := &fakePools{opens: make(chan openRec, 8)}
	tl := &Collector{}
	s := openSession(t, pools, tl)
	if err := s.Ingest(eventabi.Event{Type: eventabi.TypeSpeechStart}); err != nil {
		t.Fatal(err)
	}
	nextOpen(t, pools)
	s.Close("test done")
	<-s.Done()
	recs := tl.Records()
	last := recs[len(recs)-1]
	if last.Type != TypeSessionStats || last.SessionID != "s1" {
		t.Fatalf("last record %s of %s, want %s", last.Type, last.SessionID, TypeSessionStats)
	}
	if last.Attrs["turns_opened"] != "1" || last.Attrs["turns_aborted"] != "1" {
		t.Fatalf("session_stats attrs %v, want turns_opened 1, turns_aborted 1", last.Attrs)
	}
	if _, zero := last.Attrs["shed"]; zero {
		t.Errorf("a zero counter is reported: %v", last.Attrs)
	}
}

func TestStatsRecordNamesEveryCounter(t *testing.T) {
	rec := statsRecord("s", 5, kernel.Stats{NodeUnknownRejected: 2, MaxEdgeDepth: 7}, driverCounters{droppedNodeEvents: 3})
	want := map[string]string{"node_unknown_rejected": "2", "max_edge_depth": "7", "dropped_node_events": "3"}
	if len(rec.Attrs) != len(want) {
		t.Fatalf("attrs %v, want %v", rec.Attrs, want)
	}
	for k, v := range want {
		if rec.Attrs[k] != v {
			t.Errorf("%s = %q, want %q", k, rec.Attrs[k], v)
		}
	}
}
