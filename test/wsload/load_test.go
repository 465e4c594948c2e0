package wsload

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/rspp/rspp/test/testenv"
)

// The must-show: 50 concurrent WebSocket clients against a real
// rspp serve --listen (real plugin processes: energystt, rules, espeak),
// each speaking and listening in real time for 60 s, every third
// utterance over the agent's reply. Every turn has exactly one terminal,
// no client hears audio of a fenced turn, p99 egress frame lateness is
// under 20 ms, no session is lost. All figures are logged (and written to
// load-report.json in the test's temp dir).
func TestFiftyClientsSixtySeconds(t *testing.T) {
	if testing.Short() {
		t.Skip("50 clients x 60 s against a real rspp serve --listen: skipped under -short")
	}
	const clients, phrase, reply = 50, "what time is it", "it is time to test"
	srv := startRealServer(t, 2)
	u := spoken(t, phrase)
	rep, results := Run(context.Background(), Config{URL: srv.URL, Clients: clients, Utterances: []Utterance{u},
		Duration: 60 * time.Second, Gap: time.Second, BargeInEvery: 3, Ramp: 2 * time.Second})
	logReport(t, rep)
	if err := rep.WriteFile(filepath.Join(t.TempDir(), "load-report.json")); err != nil {
		t.Error(err)
	}

	if rep.Sessions != clients || rep.Lost != 0 {
		t.Errorf("%d sessions, %d lost: %v", rep.Sessions, rep.Lost, rep.LostReasons)
	}
	if err := rep.Check(); err != nil {
		t.Error(err)
	}
	// The fence check means something only if fences happened.
	if rep.FencedTurns == 0 || rep.BargeInsFenced == 0 {
		t.Errorf("no turn was fenced (%d barge-ins): the fence was not exercised", rep.BargeIns)
	}
	if rep.BargeInsUnfenced != 0 {
		t.Errorf("%d barge-ins during the agent's audio were not fenced", rep.BargeInsUnfenced)
	}
	if rep.NoTurn != 0 {
		t.Errorf("%d utterances got no turn", rep.NoTurn)
	}
	// Every turn gets its reply text, a barged-in one too (it was speaking).
	if n := rep.Replies[reply]; n != rep.Turns || len(rep.Replies) != 1 {
		t.Errorf("replies %v for %d turns, want %q for each", rep.Replies, rep.Turns, reply)
	}
	if rep.Lateness.N == 0 || rep.Lateness.P99 >= 20 {
		t.Errorf("egress frame lateness over %d frames: p99 %.1f ms, want < 20 ms", rep.Lateness.N, rep.Lateness.P99)
	}

	if err := srv.Stop(20 * time.Second); err != nil {
		t.Fatalf("%v\n%s", err, srv.Output())
	}
	recs, err := testenv.ReadTimeline(srv.Timeline)
	if err != nil {
		t.Fatal(err)
	}
	checkTimelineAgrees(t, recs, results)
}

// checkTimelineAgrees: the server's own timeline has exactly one terminal
// per turn, ends no session as lost, and says of every turn a client saw
// what the client saw (commit or abort).
func checkTimelineAgrees(t *testing.T, recs []testenv.Record, results []*ClientResult) {
	t.Helper()
	if err := testenv.CheckTerminals(recs); err != nil {
		t.Error(err)
	}
	type key struct{ session, turn string }
	server := map[key]*testenv.TurnOutcome{}
	for _, o := range testenv.Turns(recs) {
		server[key{o.Session, o.Turn}] = o
	}
	for _, r := range recs {
		if r.Type == "session_close" && r.Reason == "connection_lost" {
			t.Errorf("session %s closed as %s", r.SessionID, r.Reason)
		}
	}
	var seen, disagree int
	for _, cr := range results {
		for _, ct := range cr.Turns {
			seen++
			st := server[key{cr.Session, ct.ID}]
			if st == nil || st.Commits != ct.Commits || st.Aborts != ct.Aborts {
				disagree++
				if disagree <= 5 {
					t.Errorf("turn %s/%s: client saw %d commit %d abort, timeline %+v", cr.Session, ct.ID, ct.Commits, ct.Aborts, st)
				}
			}
		}
	}
	if disagree > 0 || seen == 0 {
		t.Errorf("%d of %d client turns disagree with the timeline", disagree, seen)
	}
	t.Logf("timeline: %d records, %d turns; clients saw %d turns", len(recs), len(server), seen)
}
