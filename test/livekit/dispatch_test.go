package livekit

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rspp/rspp/supervisor"
	"github.com/rspp/rspp/test/testenv"
	"github.com/rspp/rspp/transports/livekit/lkclient"
)

var joinedRoom = regexp.MustCompile(`livekit joined room: room=(\S+)`)

// roomsOf are the rooms a worker joined so far.
func (w *worker) roomsOf() []string {
	var rooms []string
	for _, m := range joinedRoom.FindAllStringSubmatch(w.Output(), -1) {
		rooms = append(rooms, m[1])
	}
	return rooms
}

// joinAll dispatches and joins one participant in each room, in
// parallel, and waits until every one has its agent session.
func joinAll(t *testing.T, agentName string, rooms []string) map[string]*lkclient.Client {
	t.Helper()
	ctx := context.Background()
	var (
		mu  sync.Mutex
		cs  = map[string]*lkclient.Client{}
		wg  sync.WaitGroup
		bad []string
	)
	for i, room := range rooms {
		if err := dispatch(ctx, room, agentName); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := lkclient.Join(ctx, wsURL(), token(t, room, fmt.Sprintf("p%02d", i)), fmt.Sprintf("p%02d", i), lkclient.Options{OpusBinary: opusBin})
			if err != nil {
				mu.Lock()
				bad = append(bad, room+": "+err.Error())
				mu.Unlock()
				return
			}
			mu.Lock()
			cs[room] = c
			mu.Unlock()
			if _, err := c.WaitFor(ctx, 60*time.Second, hasType("ready")); err != nil {
				mu.Lock()
				bad = append(bad, room+": no agent session: "+err.Error())
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range cs {
			c.Close()
		}
	})
	if len(bad) > 0 {
		t.Fatalf("%d of %d rooms without an agent: %s", len(bad), len(rooms), strings.Join(bad, "; "))
	}
	return cs
}

func roomNames(prefix string, n int) []string {
	var rs []string
	for i := range n {
		rs = append(rs, fmt.Sprintf("%s-%02d", prefix, i))
	}
	return rs
}

// TestDispatchAcrossWorkers: two rspp workers register with one
// livekit-server under one agent name; 20 rooms created with explicit
// dispatch all get an agent, on both workers. A worker SIGKILLed in the
// middle of a reply loses only its own rooms: the agent leaves them, the
// turns its timeline holds have at most one terminal, and new rooms go to
// the survivor, where a call still works. A SIGTERMed worker drains: it
// takes no new job, its live call finishes its turn, and it exits once
// its rooms are over, every turn with one terminal.
func TestDispatchAcrossWorkers(t *testing.T) {
	requireEnv(t)
	ctx := context.Background()
	a := startWorker(t, "fleet")
	b := startWorker(t, "fleet")
	rooms := roomNames("fleet", 20)
	cs := joinAll(t, "fleet", rooms)
	onA, onB := a.roomsOf(), b.roomsOf()
	t.Logf("20 rooms: %d on worker A, %d on worker B", len(onA), len(onB))
	if len(onA)+len(onB) != 20 || len(onA) == 0 || len(onB) == 0 {
		t.Fatalf("rooms on A %v, on B %v: want all 20, on both", onA, onB)
	}
	// Keep two calls per worker; the other participants leave (their
	// sessions end with client_close).
	keep := map[string]bool{onA[0]: true, onA[1%len(onA)]: true, onB[0]: true, onB[1%len(onB)]: true}
	for room, c := range cs {
		if !keep[room] {
			c.Close()
		}
	}

	// SIGKILL A in the middle of a reply.
	victim := cs[onA[0]]
	victim.Say(synth(t, "tell me a joke"))
	if _, err := victim.WaitFor(ctx, 60*time.Second, hasType("audio_start")); err != nil {
		t.Fatalf("no reply in %s: %v", onA[0], err)
	}
	time.Sleep(300 * time.Millisecond)
	killedAt := time.Now()
	if err := a.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-a.Exited()
	for deadline := time.Now().Add(60 * time.Second); victim.AgentLeft().IsZero(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the killed worker's agent is still in room %s after 60 s", onA[0])
		}
	}
	t.Logf("SIGKILL of worker A: its agent left room %s %s later", onA[0], victim.AgentLeft().Sub(killedAt).Round(time.Millisecond))
	recs, err := testenv.ReadTimeline(a.Timeline)
	if err != nil {
		t.Fatal(err)
	}
	cut := 0
	for _, tu := range testenv.Turns(recs) {
		switch n := tu.Commits + tu.Aborts; {
		case n > 1:
			t.Errorf("killed worker: %s/%s has %d terminals", tu.Session, tu.Turn, n)
		case n == 0:
			cut++
		}
	}
	t.Logf("killed worker's timeline: %d turns, %d cut open by the SIGKILL (no duplicate terminal)", len(testenv.Turns(recs)), cut)
	// The next rspp start on its state dir (as a restarted worker's is)
	// ends those turns, once each.
	sd, _, err := supervisor.OpenStateDir(a.state)
	if err != nil {
		t.Fatal(err)
	}
	_ = sd.Close()
	if recs, err = testenv.ReadTimeline(a.Timeline); err != nil {
		t.Fatal(err)
	}
	if err := testenv.CheckTerminals(recs); err != nil {
		t.Errorf("killed worker's timeline after the next start on its state dir: %v", err)
	}
	lost := 0
	for _, r := range recs {
		if r.Type == "turn_abort" && strings.HasPrefix(r.Reason, supervisor.ReasonRuntimeLost) {
			lost++
		}
	}
	if lost != cut {
		t.Errorf("%d turns sealed as %s, want the %d the SIGKILL cut open", lost, supervisor.ReasonRuntimeLost, cut)
	}
	t.Logf("the next start on its state dir ended them: %d turns aborted as %s, every turn has one terminal", lost, supervisor.ReasonRuntimeLost)

	// New rooms go to the survivor, and a call there works.
	before := len(b.roomsOf())
	fresh := roomNames("after-kill", 4)
	fcs := joinAll(t, "fleet", fresh)
	if got := b.roomsOf()[before:]; !sameSet(got, fresh) {
		t.Fatalf("rooms dispatched after the kill went to %v on the survivor, want %v", got, fresh)
	}
	fc := fcs[fresh[0]]
	fc.Say(synth(t, "hello there"))
	if _, err := fc.WaitFor(ctx, 60*time.Second, hasTurn("commit")); err != nil {
		t.Fatalf("call on the survivor: %v", err)
	}
	for _, c := range fcs {
		c.Close()
	}

	// SIGTERM B while one of its calls is in a turn: it drains.
	c3 := startWorker(t, "fleet")
	live := cs[onB[0]]
	if onB[0] == onB[1%len(onB)] {
		t.Fatal("need two rooms on B")
	}
	live.Say(synth(t, "what time is it"))
	if _, err := live.WaitFor(ctx, 60*time.Second, hasTurn("open")); err != nil {
		t.Fatal(err)
	}
	if err := b.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if _, err := b.WaitOutput(20*time.Second, "draining"); err != nil {
		t.Fatal(err)
	}
	if _, err := live.WaitFor(ctx, 60*time.Second, hasTurn("commit")); err != nil {
		t.Fatalf("the draining worker's call did not finish its turn: %v", err)
	}
	time.Sleep(2500 * time.Millisecond) // the next load report says full
	drainRooms := roomNames("during-drain", 2)
	joinAll(t, "fleet", drainRooms)
	if got := c3.roomsOf(); !sameSet(got, drainRooms) {
		t.Fatalf("rooms dispatched during the drain went to %v on the new worker, want %v (B joined %v)", got, drainRooms, b.roomsOf())
	}
	select {
	case <-b.Exited():
		t.Fatal("the draining worker exited while its rooms were live")
	default:
	}
	live.Close()
	cs[onB[1%len(onB)]].Close()
	select {
	case <-b.Exited():
	case <-time.After(45 * time.Second):
		t.Fatalf("the draining worker did not exit after its rooms ended; tail:\n%s", tail(b.Output(), 3000))
	}
	recs, err = testenv.ReadTimeline(b.Timeline)
	if err != nil {
		t.Fatal(err)
	}
	if err := testenv.CheckTerminals(recs); err != nil {
		t.Fatalf("drained worker: %v", err)
	}
	t.Logf("drained worker: %d turns, each with one terminal; it exited after its last room", len(testenv.Turns(recs)))
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestFullWorkerDeclinesJobs: a worker whose runtime admits one session
// (admission.max_sessions: 1) reports itself full once it has one, and
// the next rooms go to the other worker.
func TestFullWorkerDeclinesJobs(t *testing.T) {
	requireEnv(t)
	a := startWorkerCfg(t, "admit", "admission: {max_sessions: 1}\n")
	joinAll(t, "admit", []string{"admit-0"})
	if got := a.roomsOf(); len(got) != 1 {
		t.Fatalf("first room on %v", got)
	}
	b := startWorker(t, "admit")
	time.Sleep(2500 * time.Millisecond) // a load report of A's after its session opened
	rooms := roomNames("admit-more", 3)
	joinAll(t, "admit", rooms)
	if got := b.roomsOf(); !sameSet(got, rooms) {
		t.Fatalf("rooms after A is full went to %v on B (A has %v), want %v", got, a.roomsOf(), rooms)
	}
}
