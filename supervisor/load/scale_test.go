package load

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rspp/rspp/supervisor"
	"github.com/rspp/rspp/supervisor/internal/testplugin"
	"github.com/rspp/rspp/supervisor/internal/testrt"
	"github.com/rspp/rspp/supervisor/pool"

	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/supervisor/session"
)

// RK-10: with max_sessions N, session N+1 gets a typed reject; a closed
// session's slot is free again; a tenant at its session quota is refused
// while another tenant is not; status shows capacity, load and refusals.
func TestAdmissionMaxSessionsAndTenantQuota(t *testing.T) {
	rt := testrt.Start(t, testplugin.AdmissionConfig(t, "  max_sessions: 3\n  tenants: {a: {sessions: 1}}\n", nil), nil)
	open := func(id, tenant string) (*session.Session, error) {
		return rt.OpenSession(supervisor.SessionOptions{ID: id, TenantID: tenant})
	}
	s1, err := open("s1", "a")
	if err != nil {
		t.Fatal(err)
	}
	_, err = open("s2", "a")
	var ae *supervisor.AdmissionError
	if !errors.As(err, &ae) || !errors.Is(err, supervisor.ErrAdmission) || ae.Reason != supervisor.ReasonTenantSessions || ae.Tenant != "a" || ae.Limit != 1 {
		t.Fatalf("second session of tenant a: %v, want a tenant_sessions AdmissionError at 1", err)
	}
	s2, err := open("s2", "b")
	if err != nil {
		t.Fatalf("tenant b refused while tenant a is at its quota: %v", err)
	}
	s3, err := open("s3", "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = open("s4", "c")
	if !errors.As(err, &ae) || ae.Reason != supervisor.ReasonMaxSessions || ae.Limit != 3 || !strings.Contains(err.Error(), "max_sessions") {
		t.Fatalf("session 4 of max 3: %v, want a max_sessions AdmissionError", err)
	}
	st := rt.Admission()
	if st.Sessions != 3 || st.MaxSessions != 3 || st.Refused[supervisor.ReasonMaxSessions] != 1 || st.Refused[supervisor.ReasonTenantSessions] != 1 ||
		st.Tenants["a"].Sessions != 1 || st.Tenants["a"].SessionsQuota != 1 {
		t.Fatalf("admission status %+v", st)
	}
	s1.Close("test")
	s4, err := open("s4", "c")
	if err != nil {
		t.Fatalf("a slot was freed by a close, still refused: %v", err)
	}
	for _, s := range []*session.Session{s2, s3, s4} {
		s.Close("test")
	}
	if st := rt.Admission(); st.Sessions != 0 || st.Admitted != 4 {
		t.Fatalf("after every close: %+v, want 0 sessions, 4 admitted", st)
	}
}

// RK-10: tenant A at its turn quota has its extra turns deferred
// (pre_turn_defer) and then rejected; tenant B's turns, concurrent with
// them, open at once (attempt 0, no pre-turn record) and all commit.
func TestTenantTurnQuotaNeverDelaysOtherTenant(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time sessions of two tenants")
	}
	rt := testrt.Start(t, testplugin.AdmissionConfig(t, "  tenants: {a: {turns: 1}}\n", nil), nil)
	tl := &session.Collector{}
	var wg sync.WaitGroup
	lost := make([][]string, 2)
	for i, tenant := range []string{"a", "b"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := Run(context.Background(), rt, Options{Sessions: 3, Utterances: [][]byte{testplugin.Tone(400 * time.Millisecond)},
				Gap: time.Second, Turns: 2, Realtime: true, Tenants: []string{tenant}, Prefix: tenant, Timeline: tl})
			lost[i] = res.Lost
		}()
	}
	wg.Wait()
	if len(lost[0])+len(lost[1]) > 0 {
		t.Fatalf("sessions lost: %v", lost)
	}
	recs := tl.Records()
	count := func(prefix, typ string) int {
		n := 0
		for _, r := range recs {
			if r.Type == typ && strings.HasPrefix(r.SessionID, prefix+"-") {
				n++
			}
		}
		return n
	}
	var b []kernel.TimelineRecord
	for _, r := range recs {
		if strings.HasPrefix(r.SessionID, "b-") {
			b = append(b, r)
		}
	}
	termB := CountTerminals(b)
	t.Logf("tenant a: %d turn_open, %d pre_turn_defer, %d pre_turn_reject; tenant b: %d turn_open, %d committed, %d deferred; status %+v",
		count("a", "turn_open"), count("a", "pre_turn_defer"), count("a", "pre_turn_reject"), termB.Opened, termB.Committed, count("b", "pre_turn_defer"), rt.Admission())
	if count("a", "pre_turn_defer") == 0 {
		t.Fatal("tenant a's concurrent turns over its quota of 1 were never deferred: the test proves nothing")
	}
	if count("b", "pre_turn_defer")+count("b", "pre_turn_reject") != 0 {
		t.Errorf("tenant b's turns were deferred or rejected by tenant a's quota")
	}
	for _, r := range b {
		if r.Type == "turn_open" && r.Attrs["attempt"] != "0" {
			t.Errorf("tenant b turn %s/%s opened at attempt %s", r.SessionID, r.TurnID, r.Attrs["attempt"])
		}
	}
	if termB.Opened != 6 || termB.Committed != 6 {
		t.Errorf("tenant b: %d opened, %d committed, want 6 and 6", termB.Opened, termB.Committed)
	}
	for _, r := range recs {
		if r.Type == "pre_turn_defer" && !strings.Contains(r.Reason, supervisor.ReasonTenantTurns) {
			t.Errorf("defer reason %q does not name %s", r.Reason, supervisor.ReasonTenantTurns)
		}
	}
	if st := rt.Admission(); st.TurnsDeferred == 0 || st.Tenants["a"].Turns != 0 {
		t.Errorf("status after the load %+v: want deferred turns counted and no turn left open", st)
	}
}

// After SIGKILL of one of two STT instances under load, invocations
// spread over the survivor and the replacement (least loaded), and
// commits come back.
func TestInvocationsSpreadAfterReplacement(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time sessions")
	}
	two := "instances: 2"
	cfgPath := testplugin.Config(t, t.TempDir(), map[string]string{"stt": two, "llm": two, "tts": two}, ", on_failure: retry, max_retries: 2")
	ready := testplugin.NewEventLog[pool.Event]()
	rt := testrt.Start(t, cfgPath, ready.Add)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan Result, 1)
	counter := NewTerminalCounter()
	go func() {
		done <- Run(ctx, rt, Options{Sessions: 12, Utterances: [][]byte{testplugin.Tone(400 * time.Millisecond)},
			Gap: time.Second, Turns: 8, Realtime: true, Polite: true, Stagger: 60 * time.Millisecond, Timeline: counter, Prefix: "s"})
	}()
	time.Sleep(2 * time.Second)
	stt := rt.Pool("stt")
	insts := stt.Instances()
	victim := insts[0]
	if err := syscall.Kill(victim.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	ready.Wait(t, "stt replacement", func(ev pool.Event) bool {
		return ev.Type == "ready" && ev.Pool == stt.Key() && ev.Instance == stt.Key()+".3"
	})
	before := stt.Status().Served
	res := <-done
	after := stt.Status().Served
	term := counter.Terminals(true)
	t.Logf("served at replacement %v, at the end %v; turns %d opened, %d committed, %d aborted %v", before, after, term.Opened, term.Committed, term.Aborted, term.AbortReasons)
	if len(res.Lost) > 0 || term.WrongCount > 0 {
		t.Fatalf("lost %v, wrong terminals %v", res.Lost, term.Wrong)
	}
	if len(after) != 2 {
		t.Fatalf("stt instances at the end %v, want 2", after)
	}
	opened := sum(after) - sum(before)
	for name, n := range after {
		if since := n - before[name]; since*4 < opened {
			t.Errorf("instance %s took %d of the %d invocations opened after the replacement: not spread (%v -> %v)", name, since, opened, before, after)
		}
	}
	if term.Opened < 12*6 {
		t.Errorf("only %d turns opened", term.Opened)
	}
}

func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

func TestTrustedCPUFollowsMachineAndPool(t *testing.T) {
	for _, c := range []struct {
		cpus, max int
		want      float64
	}{
		{2, 1, 2}, {2, 2, 1}, {2, 4, 1}, {8, 1, 8}, {8, 4, 2}, {8, 16, 1}, {1, 4, 1}, {0, 0, 1},
	} {
		if got := supervisor.TrustedCPU(c.cpus, c.max); got != c.want {
			t.Errorf("TrustedCPU(%d cpus, max %d) = %v, want %v", c.cpus, c.max, got, c.want)
		}
	}
}

// The streaming counter agrees with CountTerminals on a whole timeline
// and keeps nothing per ended turn beyond its bounded ring.
func TestTerminalCounterAgreesAndStaysBounded(t *testing.T) {
	var recs []kernel.TimelineRecord
	add := func(typ, sess, turn, reason string) {
		recs = append(recs, kernel.TimelineRecord{Type: typ, SessionID: sess, TurnID: turn, Reason: reason})
	}
	for s := range 3 {
		sess := fmt.Sprintf("s%d", s)
		add("session_open", sess, "", "")
		for i := range 5000 {
			turn := fmt.Sprintf("t%d", i)
			add("turn_open", sess, turn, "")
			switch i % 3 {
			case 0:
				add("turn_commit", sess, turn, "")
			case 1:
				add("turn_abort", sess, turn, "barge_in")
			default:
				add("turn_abort", sess, turn, fmt.Sprintf("node stt failed: timed out %d", i))
			}
		}
		add("session_close", sess, "", "")
	}
	// Wrong ones: a second terminal, a terminal without open, an open
	// without terminal.
	add("turn_commit", "s0", "t4999", "")
	add("turn_commit", "s9", "t1", "")
	add("turn_open", "s9", "t2", "")
	c := NewTerminalCounter()
	for _, r := range recs {
		c.Append(r)
	}
	got, want := c.Terminals(true), CountTerminals(recs)
	// The streaming counter counts a turn's first terminal (an abort
	// here) and then the second as wrong; the whole-timeline count has
	// the turn as wrong only.
	if got.Sessions != want.Sessions || got.Closed != want.Closed || got.Committed != want.Committed || got.Aborted != want.Aborted+1 ||
		got.WrongCount != 3 || want.WrongCount != 3 || fmt.Sprint(got.AbortReasons) != fmt.Sprint(want.AbortReasons) {
		t.Fatalf("counter %+v\nwhole timeline %+v", got, want)
	}
	if len(c.recent) > recentTurns || c.openTurns() != 1 {
		t.Fatalf("counter keeps %d ended turns (ring %d) and %d open", len(c.recent), recentTurns, c.openTurns())
	}
}
