package load

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/supervisor/internal/testplugin"
	"github.com/rspp/rspp/supervisor/internal/testrt"
	"github.com/rspp/rspp/supervisor/pool"

	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/supervisor/session"
)

// turnsByOpen maps turn key (session/turn) to its turn_open record.
func turnOpens(recs []kernel.TimelineRecord) map[string]kernel.TimelineRecord {
	out := map[string]kernel.TimelineRecord{}
	for _, r := range recs {
		if r.Type == "turn_open" {
			out[r.SessionID+"/"+r.TurnID] = r
		}
	}
	return out
}

func terminalOf(recs []kernel.TimelineRecord, key string) (kernel.TimelineRecord, bool) {
	for _, r := range recs {
		if (r.Type == "turn_commit" || r.Type == "turn_abort") && r.SessionID+"/"+r.TurnID == key {
			return r, true
		}
	}
	return kernel.TimelineRecord{}, false
}

// Must-show: SIGKILL of one provider instance under 50 concurrent
// sessions loses no session, every accepted turn has exactly one terminal,
// and every turn that opened after the kill commits.
func TestFiftySessionsSurviveProviderSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("50 real-time sessions")
	}
	dir := t.TempDir()
	two := "instances: 2"
	cfgPath := testplugin.Config(t, dir, map[string]string{"stt": two, "llm": two, "tts": two}, ", on_failure: retry, max_retries: 2")
	crashed := make(chan pool.Event, 16)
	rt := testrt.Start(t, cfgPath, func(ev pool.Event) {
		if ev.Type == "crashed" {
			crashed <- ev
		}
	})
	tl := &session.Collector{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		res  Result
		done = make(chan struct{})
	)
	go func() {
		defer close(done)
		res = Run(ctx, rt, Options{Sessions: 50, Utterances: [][]byte{testplugin.Tone(400 * time.Millisecond)},
			Gap: 1500 * time.Millisecond, Turns: 4, Realtime: true, Polite: true, Stagger: 20 * time.Millisecond, Timeline: tl, Prefix: "s"})
	}()
	// Once turns are in flight, kill the busiest instance of any provider
	// at a moment it has several invocations open (or the busiest seen
	// within 3 s).
	time.Sleep(2 * time.Second)
	var victim *pool.Instance
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		for _, prov := range []string{"stt", "llm", "tts"} {
			for _, inst := range rt.Pool(prov).Instances() {
				if victim == nil || inst.Node().OpenInvocations() > victim.Node().OpenInvocations() {
					victim = inst
				}
			}
		}
		if victim.Node().OpenInvocations() >= 5 {
			break
		}
	}
	inflight := victim.Node().OpenInvocations()
	if err := syscall.Kill(victim.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killedAt := session.ProcessClock{}.Now()
	var ev pool.Event
	select {
	case ev = <-crashed:
	case <-time.After(30 * time.Second):
		t.Fatal("SIGKILL not detected")
	}
	if ev.Crash.Kind != pool.CrashSignal || ev.Instance != victim.Name() {
		t.Fatalf("crash event %+v, want signal crash of %s", ev, victim.Name())
	}
	<-done
	recs := tl.Records()
	term := CountTerminals(recs)
	after, afterCommitted := 0, 0
	for key, open := range turnOpens(recs) {
		if open.MonoNanos <= killedAt {
			continue
		}
		after++
		if r, ok := terminalOf(recs, key); ok && r.Type == "turn_commit" {
			afterCommitted++
		} else {
			t.Errorf("turn %s opened after the kill but ended %s %q", key, r.Type, r.Reason)
		}
	}
	t.Logf("sessions %d (closed %d, lost %d); turns opened %d, committed %d, aborted %d %v; wrong terminals %d; invocations in flight on the victim %s: %d; turns opened after the kill %d, committed %d",
		term.Sessions, term.Closed, len(res.Lost), term.Opened, term.Committed, term.Aborted, term.AbortReasons, len(term.Wrong), victim.Name(), inflight, after, afterCommitted)
	if len(res.Lost) > 0 || term.Sessions != 50 || term.Closed != 50 {
		t.Errorf("sessions lost: %v (opened %d, closed %d)", res.Lost, term.Sessions, term.Closed)
	}
	if len(term.Wrong) > 0 {
		t.Errorf("turns without exactly one terminal: %v", term.Wrong)
	}
	if after == 0 || inflight == 0 {
		t.Errorf("%d turns opened after the kill, %d invocations in flight on the victim: the test proves nothing", after, inflight)
	}
	if term.Opened < 100 {
		t.Errorf("only %d turns opened of 200 utterances fed", term.Opened)
	}
}

// Must-show: a plugin that stops answering is timed out, killed after
// the grace and replaced; its turn ends with one terminal naming the
// timeout, and the next turn commits on the replacement.
func TestHungPluginTimedOutKilledAndReplaced(t *testing.T) {
	dir := t.TempDir()
	hang := filepath.Join(testplugin.SignalDir(t), "hang")
	cfgPath := testplugin.Config(t, dir, map[string]string{"llm.config": "hang_file: " + hang}, "")
	// llm times out after 1s (the others keep 10s).
	raw, _ := os.ReadFile(cfgPath)
	os.WriteFile(cfgPath, []byte(strings.Replace(string(raw), "{id: llm, provider: llm, timeout: 10s", "{id: llm, provider: llm, timeout: 1s", 1)), 0o644)
	var (
		mu     sync.Mutex
		events []pool.Event
	)
	rt := testrt.Start(t, cfgPath, func(ev pool.Event) {
		mu.Lock()
		events = append(events, ev)
		mu.Unlock()
	})
	hungPid := rt.Pool("llm").Pids()[0]
	if err := os.WriteFile(hang, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tl := &session.Collector{}
	res := Run(context.Background(), rt, Options{Sessions: 1, Utterances: [][]byte{testplugin.Tone(400 * time.Millisecond)},
		Gap: 3 * time.Second, Turns: 2, Realtime: true, Timeline: tl, Prefix: "hang"})
	recs := tl.Records()
	term := CountTerminals(recs)
	if len(res.Lost) > 0 || len(term.Wrong) > 0 || term.Opened != 2 {
		t.Fatalf("lost %v, wrong %v, opened %d", res.Lost, term.Wrong, term.Opened)
	}
	var terms []kernel.TimelineRecord
	for _, r := range recs {
		if r.Type == "turn_commit" || r.Type == "turn_abort" {
			terms = append(terms, r)
		}
	}
	if terms[0].Type != "turn_abort" || !strings.Contains(terms[0].Reason, "timeout") || !strings.Contains(terms[0].Reason, "llm") {
		t.Fatalf("first turn ended %s %q, want an abort naming the llm timeout", terms[0].Type, terms[0].Reason)
	}
	if terms[1].Type != "turn_commit" {
		t.Fatalf("turn after the hang ended %s %q, want commit on the replacement", terms[1].Type, terms[1].Reason)
	}
	mu.Lock()
	defer mu.Unlock()
	var crash *pool.CrashError
	for _, ev := range events {
		if ev.Type == "crashed" && ev.Pid == hungPid {
			crash = ev.Crash
		}
	}
	if crash == nil || crash.Kind != pool.CrashHung {
		t.Fatalf("hung llm (pid %d) was not killed as hung: %v", hungPid, crash)
	}
	if externalnode.ProcessAlive(hungPid) {
		t.Fatalf("hung plugin pid %d still alive", hungPid)
	}
	t.Logf("turn 1: %s %q; crash: %v; turn 2: %s", terms[0].Type, terms[0].Reason, crash, terms[1].Type)
}
