package kernel

import (
	"testing"

	"github.com/rspp/rspp/kernel/eventabi"
)

// A session that loses its lease mid-turn: the turn aborts stale_epoch
// behind its fence, every later egress of it is dropped and counted, the
// loss and the drops are recorded, and no turn opens again.
func TestAuthorityLostMidTurnFencesEgress(t *testing.T) {
	auth := &fakeAuthority{epoch: 3}
	h := newHarness(t, func(c *SessionConfig) { c.Epoch = 3; c.Authority = auth })
	h.utterance(10)
	stt, llm, tts := h.inv("stt"), h.inv("llm"), h.inv("tts")
	h.must(h.emitOut(stt, text(eventabi.TypeTranscriptFinal, "hello")))
	h.end(stt, nil, "")
	h.must(h.emitOut(llm, text(eventabi.TypeTextDelta, "hi")))
	h.end(llm, nil, "")
	ev := loud()
	ev.Epoch = 3
	h.must(h.emitOut(tts, ev)) // still held: goes out
	if n := count[EgressEvent](h.effects, nil); n != 1 {
		t.Fatalf("egress before the loss: %d", n)
	}
	auth.epoch = 4 // another process took the session over
	for range 3 {
		_ = h.emitOut(tts, ev)
	}
	h.s.Tick()
	h.drain()
	if n := count[EgressEvent](h.effects, nil); n != 1 {
		t.Fatalf("stale egress reached the transport: %d events", n)
	}
	lost := h.find("authority_lost")
	if len(lost) != 1 || lost[0].Attrs["epoch"] != "3" || lost[0].Attrs["current_epoch"] != "4" || lost[0].Attrs["at"] != "egress" {
		t.Fatalf("authority_lost %+v", lost)
	}
	ab := h.find("turn_abort")
	if len(ab) != 1 || ab[0].Reason != ReasonStaleEpoch || count[FenceEgress](h.effects, nil) != 1 {
		t.Fatalf("abort %+v", ab)
	}
	drop := h.find("egress_drop")
	if len(drop) != 1 || drop[0].Reason != ReasonStaleEpoch || drop[0].Attrs["count"] != "3" {
		t.Fatalf("egress_drop %+v", drop)
	}
	if st := h.s.Stats(); st.StaleEgressDropped != 3 || st.AuthorityLost != 1 {
		t.Fatalf("stats %+v", st)
	}
	h.utterance(10)
	if len(h.find("turn_open")) != 1 || h.find("pre_turn_reject")[0].Reason != ReasonStaleEpoch {
		t.Fatalf("records after loss %v", h.recordTypes())
	}
}

// The ingress check: audio after the loss is counted and opens nothing.
func TestAuthorityCheckedAtIngress(t *testing.T) {
	auth := &fakeAuthority{epoch: 2}
	h := newHarness(t, func(c *SessionConfig) { c.Epoch = 1; c.Authority = auth })
	h.utterance(5)
	if h.s.Stats().StaleEpoch == 0 || len(h.find("turn_open")) != 0 {
		t.Fatalf("stale ingress: %+v %v", h.s.Stats(), h.recordTypes())
	}
	if l := h.find("authority_lost"); len(l) != 1 || l[0].Attrs["at"] != "ingress" {
		t.Fatalf("authority_lost %+v", l)
	}
	// Control input still passes: the session can be closed.
	h.must(h.ingest(eventabi.Event{Type: eventabi.TypeSessionClose, Lane: eventabi.LaneControl}))
	if !h.s.Closed() {
		t.Fatal("session_close refused after the loss")
	}
}

type strictAuthority struct{ fakeAuthority }

func (strictAuthority) RequireEpoch() bool { return true }

// With a lease service, node outputs must carry the session's epoch:
// unstamped (0) and older epochs are rejected.
func TestRequireEpochRejectsUnstampedOutput(t *testing.T) {
	h := newHarness(t, func(c *SessionConfig) { c.Epoch = 5; c.Authority = &strictAuthority{fakeAuthority{epoch: 5}} })
	h.utterance(10)
	stt := h.inv("stt")
	ev := text(eventabi.TypeTranscriptFinal, "x")
	if err := h.emitOut(stt, ev); !errorsIs(err, ErrStaleEpoch) {
		t.Fatalf("unstamped: %v", err)
	}
	ev.Epoch = 4
	if err := h.emitOut(stt, ev); !errorsIs(err, ErrStaleEpoch) {
		t.Fatalf("old epoch: %v", err)
	}
	ev.Epoch = 5
	h.must(h.emitOut(stt, ev))
}

// A retry of an idempotent binding may follow output already delivered:
// the retry's outputs that an earlier attempt delivered are deduplicated,
// so downstream sees each output once, in order.
func TestIdempotentRetryDeduplicatesDeliveredOutput(t *testing.T) {
	h := newHarness(t, func(c *SessionConfig) {
		b := c.Bindings.(fakeBindings)
		e := b["espeak"]
		e.Idempotent = true
		b["espeak"] = e
		for i := range c.Graph.Nodes {
			if c.Graph.Nodes[i].ID == "tts" {
				c.Graph.Nodes[i].OnFailure, c.Graph.Nodes[i].MaxRetries = PolicyRetry, 1
			}
		}
	})
	h.utterance(10)
	stt, llm, tts := h.inv("stt"), h.inv("llm"), h.inv("tts")
	h.must(h.emitOut(stt, text(eventabi.TypeTranscriptFinal, "hello")))
	h.end(stt, nil, "")
	h.must(h.emitOut(llm, text(eventabi.TypeTextDelta, "hi")))
	h.end(llm, nil, "")
	mk := func(i byte) eventabi.Event { ev := loud(); ev.Audio.PCM[0] = i; return ev }
	for i := byte(1); i <= 3; i++ {
		h.must(h.emitOut(tts, mk(i)))
	}
	h.end(tts, ErrNodeCrashed, "signal: killed")
	tts2 := h.inv("tts")
	if tts2 == tts {
		t.Fatalf("no retry: %v", h.recordTypes())
	}
	if r := h.find("invocation_retry"); len(r) != 1 || r[0].Attrs["deduplicate"] != "3" {
		t.Fatalf("retry %+v", r)
	}
	for i := byte(1); i <= 5; i++ { // the retry produces the whole reply again
		h.must(h.emitOut(tts2, mk(i)))
	}
	h.end(tts2, nil, "")
	var got []byte
	for _, e := range h.effects {
		if eg, ok := e.(EgressEvent); ok {
			got = append(got, eg.Event.Audio.PCM[0])
		}
	}
	if string(got) != "\x01\x02\x03\x04\x05" || h.s.Stats().Deduplicated != 3 || len(h.find("turn_commit")) != 1 {
		t.Fatalf("egress %v, dedup %d, %v", got, h.s.Stats().Deduplicated, h.recordTypes())
	}
}

// Without the declaration, output already delivered still forbids a retry.
func TestNonIdempotentRetryAfterOutputAborts(t *testing.T) {
	h := newHarness(t, func(c *SessionConfig) {
		for i := range c.Graph.Nodes {
			if c.Graph.Nodes[i].ID == "tts" {
				c.Graph.Nodes[i].OnFailure, c.Graph.Nodes[i].MaxRetries = PolicyRetry, 1
			}
		}
	})
	h.utterance(10)
	stt, llm, tts := h.inv("stt"), h.inv("llm"), h.inv("tts")
	h.must(h.emitOut(stt, text(eventabi.TypeTranscriptFinal, "hello")))
	h.end(stt, nil, "")
	h.must(h.emitOut(llm, text(eventabi.TypeTextDelta, "hi")))
	h.end(llm, nil, "")
	h.must(h.emitOut(tts, loud()))
	h.end(tts, ErrNodeCrashed, "")
	if f := h.find("invocation_fail"); len(f) != 1 || f[0].Attrs["decision"] != PolicyAbort || len(h.find("turn_abort")) != 1 {
		t.Fatalf("records %v", h.recordTypes())
	}
}
