package kernel_test

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/kernel/eventabi"
	"github.com/rspp/rspp/test/stats"
)

// Kernel quality-gate benchmarks (make bench folds them into
// bench/results.json from go test -bench output). They drive the public
// kernel API with a manual clock and never measure I/O.

func BenchmarkTurnOpen(b *testing.B)    { benchTurnOpen(b) }
func BenchmarkCancelFence(b *testing.B) { benchCancelFence(b) }

func BenchmarkDataEvent(b *testing.B) {
	b.Run("sessions=1", benchDataEvent(1))
	b.Run("sessions=100", benchDataEvent(100))
	b.Run("sessions=1000", benchDataEvent(1000))
}

// clock is a manual clock advanced by the benchmark.
type clock struct{ ns int64 }

func (c *clock) Now() int64 { return c.ns }

func linear() kernel.GraphSpec {
	return kernel.GraphSpec{
		Nodes: []kernel.NodeSpec{{ID: "stt", Provider: "stt"}, {ID: "llm", Provider: "llm"}, {ID: "tts", Provider: "tts"}},
		Edges: []kernel.EdgeSpec{{From: kernel.Ingress, To: "stt"}, {From: "stt", To: "llm"}, {From: "llm", To: "tts"}, {From: "tts", To: kernel.Egress}},
	}
}

func newSession(b *testing.B, id string, c *clock, vad bool) *kernel.Session {
	s, err := kernel.NewSession(kernel.SessionConfig{SessionID: id, Epoch: 1, Graph: linear(), Clock: c, VAD: kernel.VADConfig{Disabled: !vad}})
	if err != nil {
		b.Fatal(err)
	}
	s.Ready()
	return s
}

var (
	speechStart = eventabi.Event{Type: eventabi.TypeSpeechStart}
	speechEnd   = eventabi.Event{Type: eventabi.TypeSpeechEnd}
)

// voiced is 20 ms of 16 kHz mono speech-level audio.
func voiced() eventabi.Event {
	pcm := make([]byte, 640)
	for i := 0; i < len(pcm); i += 2 {
		binary.LittleEndian.PutUint16(pcm[i:], uint16(int16(8000*(1-2*((i/2)%2)))))
	}
	return eventabi.Event{Type: eventabi.TypeAudioFrame, Audio: &eventabi.Audio{PCM: pcm, SampleRate: 16000, Channels: 1}}
}

func find[T kernel.Effect](effs []kernel.Effect, ok func(T) bool) bool {
	for _, e := range effs {
		if v, is := e.(T); is && ok(v) {
			return true
		}
	}
	return false
}

// benchTurnOpen measures propose -> turn_open: a transport speech_start ingested
// until Ready hands out the turn_open record (with plan freeze and every
// StartInvocation). Reported as ns/turn_open.
func benchTurnOpen(b *testing.B) {
	c := &clock{}
	s := newSession(b, "bench", c, false)
	var total time.Duration
	samples := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		c.ns += int64(time.Millisecond)
		t0 := time.Now()
		_ = s.Ingest(speechStart)
		effs := s.Ready()
		d := time.Since(t0)
		total += d
		samples = append(samples, d)
		if !find(effs, func(r kernel.Record) bool { return r.Record.Type == "turn_open" }) {
			b.Fatal("no turn_open")
		}
		_ = s.Ingest(speechEnd)
		_ = s.Cancel("turn", "", "bench")
		s.Ready()
	}
	b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ns/turn_open")
	stats.Report(b, samples)
}

// benchCancelFence measures barge-in ingress -> FenceEgress: speech starting
// while the agent turn is producing output, until Ready hands out the fence
// (cancels, records and the next turn's open included). ns/fence.
func benchCancelFence(b *testing.B) {
	c := &clock{}
	s := newSession(b, "bench", c, false)
	_ = s.Ingest(speechStart)
	s.Ready()
	var total time.Duration
	samples := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		c.ns += int64(time.Millisecond)
		_ = s.Ingest(speechEnd) // the agent turn is now responding
		s.Ready()
		t0 := time.Now()
		_ = s.Ingest(speechStart) // barge-in
		effs := s.Ready()
		d := time.Since(t0)
		total += d
		samples = append(samples, d)
		if !find(effs, func(kernel.FenceEgress) bool { return true }) {
			b.Fatal("no fence")
		}
	}
	b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ns/fence")
	stats.Report(b, samples)
}

// benchDataEvent measures the kernel's cost per user audio frame (gateway, VAD,
// routing, stamping, Ready) spread over n concurrent sessions, each in a
// listening turn. ns/op is per data event.
func benchDataEvent(n int) func(b *testing.B) {
	return func(b *testing.B) {
		c := &clock{}
		frame := voiced()
		sessions := make([]*kernel.Session, n)
		for i := range sessions {
			sessions[i] = newSession(b, fmt.Sprintf("bench-%d", i), c, true)
			for range 4 { // establish speech: each session holds an open turn
				_ = sessions[i].Ingest(frame)
			}
			if sessions[i].ActiveTurn() == "" {
				b.Fatal("no turn")
			}
			sessions[i].Ready()
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			s := sessions[i%n]
			c.ns += int64(20 * time.Millisecond / time.Duration(n))
			if err := s.Ingest(frame); err != nil {
				b.Fatal(err)
			}
			s.Ready()
		}
	}
}
