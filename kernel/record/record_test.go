package record

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/kernel/eventabi"
)

// manualClock is a test clock the test advances.
type manualClock struct{ now int64 }

func (c *manualClock) Now() int64 { return c.now }

// fakeAdmitter defers the first proposal, then admits (a fake of the
// admission policy: its answers are nondeterministic inputs).
type fakeAdmitter struct{ calls int }

func (a *fakeAdmitter) Admit(kernel.TurnIntent) kernel.Decision {
	a.calls++
	if a.calls == 1 {
		return kernel.Decision{Outcome: kernel.Defer, Reason: "fake: busy", RetryAfter: 10 * time.Millisecond}
	}
	return kernel.Decision{Outcome: kernel.Admit}
}

// fakeAuthority reports epoch 1.
type fakeAuthority struct{}

func (fakeAuthority) CurrentEpoch(string) uint64 { return 1 }

// randomIDs are ids that do not follow from the call order (a fake of a
// uuid source): they must be recorded.
type randomIDs struct{ n int }

func (r *randomIDs) NewID(kind string) string {
	r.n++
	return fmt.Sprintf("%s-%x", kind, r.n*7919)
}

type sink struct{ recs []kernel.TimelineRecord }

func (s *sink) add(r kernel.TimelineRecord) { s.recs = append(s.recs, r) }

// drain takes every effect, keeping the records, and gives the others
// back (what a runner would carry out).
func drain(s *Session, out *[]kernel.TimelineRecord) []kernel.Effect {
	var other []kernel.Effect
	for {
		effs := s.Ready()
		if len(effs) == 0 {
			return other
		}
		for _, e := range effs {
			if r, ok := e.(kernel.Record); ok {
				*out = append(*out, r.Record)
			} else {
				other = append(other, e)
			}
		}
	}
}

func encodeAll(t *testing.T, recs []kernel.TimelineRecord) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, r := range recs {
		line, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// A session whose admission defers, whose ids are not deterministic and
// whose deferred proposal is re-proposed by a tick is rebuilt exactly
// from its recording: the collaborators' answers and the effective tick
// are inputs.
func TestOracleAnswersAndTicksAreReplayed(t *testing.T) {
	clk := &manualClock{now: 1000}
	var inputs sink
	s, err := Open(kernel.SessionConfig{
		SessionID: "s", Epoch: 1, Clock: clk, IDs: &randomIDs{}, Admission: &fakeAdmitter{}, Authority: fakeAuthority{},
		VAD: kernel.VADConfig{Disabled: true},
		Graph: kernel.GraphSpec{
			Nodes: []kernel.NodeSpec{{ID: "n", Kind: "custom", Provider: "p", Timeout: time.Second}},
			Edges: []kernel.EdgeSpec{{From: kernel.Ingress, To: "n"}, {From: "n", To: kernel.Egress}},
		},
	}, Options{WallAnchor: 1_700_000_000_000_000_000, Sink: inputs.add})
	if err != nil {
		t.Fatal(err)
	}
	var recs []kernel.TimelineRecord
	drain(s, &recs)
	clk.now += 1e6
	if err := s.Ingest(eventabi.Event{Type: eventabi.TypeSpeechStart}); err != nil {
		t.Fatal(err)
	}
	drain(s, &recs)
	for i := 0; i < 3; i++ { // ticks before the retry time: no effect, not inputs
		clk.now += 1e6
		s.Tick()
		drain(s, &recs)
	}
	clk.now += 20e6
	s.Tick() // re-proposes: admitted, turn opens
	var inv string
	for _, e := range drain(s, &recs) {
		if st, ok := e.(kernel.StartInvocation); ok {
			inv = st.Ref.InvocationID
		}
	}
	if inv == "" {
		t.Fatalf("no invocation after the deferred proposal was admitted: %+v", recs)
	}
	clk.now += 1e6
	if err := s.Ingest(eventabi.Event{Type: eventabi.TypeSpeechEnd}); err != nil {
		t.Fatal(err)
	}
	drain(s, &recs)
	clk.now += 1e6
	if err := s.OnNodeEvent(inv, eventabi.Event{Type: eventabi.TypeTextFinal, Text: &eventabi.Text{Text: "hi", Final: true}}); err != nil {
		t.Fatal(err)
	}
	drain(s, &recs)
	s.OnInvocationEnd(inv, kernel.InvocationResult{})
	drain(s, &recs)
	s.Close("done")
	drain(s, &recs)

	ticks, oracles := 0, map[string]int{}
	for _, r := range inputs.recs {
		if r.Input.Kind == kernel.InputTick {
			ticks++
		}
		for _, a := range r.Input.Oracle {
			oracles[a.Kind]++
		}
	}
	if ticks != 1 {
		t.Fatalf("%d ticks recorded, want the one effective tick", ticks)
	}
	for _, k := range []string{"admission", "authority", "id"} {
		if oracles[k] == 0 {
			t.Fatalf("no %s answer recorded: %v", k, oracles)
		}
	}
	var defer_ bool
	for _, r := range recs {
		defer_ = defer_ || r.Type == "pre_turn_defer"
		if r.WallNanos != 1_700_000_000_000_000_000+r.MonoNanos {
			t.Fatalf("wall time of %s is not anchor + mono: %d", r.Type, r.WallNanos)
		}
	}
	if !defer_ {
		t.Fatal("no pre_turn_defer recorded")
	}
	got, err := Resimulate(inputs.recs)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Complete || !bytes.Equal(encodeAll(t, got.Records), encodeAll(t, recs)) {
		t.Fatalf("resimulated records differ:\n%s\nwant\n%s", encodeAll(t, got.Records), encodeAll(t, recs))
	}
	// A recorded answer that no longer matches what the kernel asks is a
	// divergence, named.
	bad := append([]kernel.TimelineRecord(nil), inputs.recs...)
	removed := false
	for i, r := range bad {
		for j, a := range r.Input.Oracle {
			if a.Kind == "admission" && !removed {
				in := *r.Input
				in.Oracle = append(append([]kernel.OracleAnswer(nil), in.Oracle[:j]...), in.Oracle[j+1:]...)
				bad[i].Input = &in
				removed = true
				break
			}
		}
	}
	if !removed {
		t.Fatal("no admission answer to remove")
	}
	if _, err := Resimulate(bad); !errors.Is(err, ErrDiverged) {
		t.Fatalf("resimulation without the admission answer: %v, want ErrDiverged", err)
	}
}

func TestOpenRejectsAnUnknownLevel(t *testing.T) {
	_, err := Open(kernel.SessionConfig{SessionID: "s", Clock: &manualClock{}}, Options{Policy: Policy{Level: "verbose"}})
	if !errors.Is(err, kernel.ErrConfig) {
		t.Fatalf("level verbose: %v, want kernel.ErrConfig", err)
	}
	if _, err := Resimulate(nil); !errors.Is(err, ErrNotRecorded) {
		t.Fatalf("resimulate nothing: %v", err)
	}
}

// Events the kernel hands out carry wall time from the session's anchor.
func TestEventsCarryWallTime(t *testing.T) {
	clk := &manualClock{now: 5e9}
	s, err := Open(kernel.SessionConfig{SessionID: "s", Epoch: 1, Clock: clk, VAD: kernel.VADConfig{Disabled: true},
		Graph: kernel.GraphSpec{
			Nodes: []kernel.NodeSpec{{ID: "n", Kind: "custom", Provider: "p", Timeout: time.Second}},
			Edges: []kernel.EdgeSpec{{From: kernel.Ingress, To: "n"}, {From: "n", To: kernel.Egress}},
		}}, Options{WallAnchor: 1_700_000_000_000_000_000})
	if err != nil {
		t.Fatal(err)
	}
	var recs []kernel.TimelineRecord
	_ = s.Ingest(eventabi.Event{Type: eventabi.TypeSpeechStart})
	drain(s, &recs)
	clk.now += 20e6
	_ = s.Ingest(eventabi.Event{Type: eventabi.TypeAudioFrame, Audio: &eventabi.Audio{PCM: make([]byte, 640), SampleRate: 16000, Channels: 1}})
	n := 0
	for _, e := range drain(s, &recs) {
		if d, ok := e.(kernel.DeliverInput); ok {
			n++
			if d.Event.WallNanos != 1_700_000_000_000_000_000+clk.now || d.Event.MonoNanos != clk.now {
				t.Fatalf("delivered event wall %d mono %d, clock %d", d.Event.WallNanos, d.Event.MonoNanos, clk.now)
			}
		}
	}
	if n != 1 {
		t.Fatalf("%d inputs delivered", n)
	}
	if last := recs[len(recs)-1]; last.MediaNanos != 0 {
		t.Fatalf("media time before any frame was taken: %d", last.MediaNanos)
	}
}
