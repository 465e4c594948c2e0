package session

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/kernel/eventabi"
	"github.com/rspp/rspp/kernel/record"
)

// unbufferedJSONL is the baseline the benchmarks compare against: the
// timeline writer as it was before (one unbuffered Write per record under
// a mutex, on the caller's goroutine).
type unbufferedJSONL struct {
	mu sync.Mutex
	f  *os.File
}

func (u *unbufferedJSONL) Append(rec kernel.TimelineRecord) {
	line, err := json.Marshal(rec)
	if err != nil {
		return
	}
	line = append(line, '\n')
	u.mu.Lock()
	_, _ = u.f.Write(line)
	u.mu.Unlock()
}

func benchRecords() map[string]kernel.TimelineRecord {
	pcm := make([]byte, 640)
	for i := range pcm {
		pcm[i] = byte(i)
	}
	return map[string]kernel.TimelineRecord{
		"control": {Seq: 7, SessionID: "bench-1", TurnID: "turn-3", Type: "turn_open", MonoNanos: 123456789, WallNanos: 1796177635139402465,
			Attrs: map[string]string{"plan_hash": "9c6162f57a36e3ed", "plan_id": "plan-4", "epoch": "1", "admission": "admit", "attempt": "0",
				"binding.stt": "pocketsphinx@1", "binding.llm": "rules@1", "binding.tts": "espeak@1"}},
		"input": {SessionID: "bench-1", Type: "input", MonoNanos: 123456789, WallNanos: 1796177635139402465, MediaNanos: 2e9,
			Input: &kernel.InputRecord{N: 812, Kind: kernel.InputIngest, Ready: 1,
				Event: &eventabi.Event{Type: eventabi.TypeAudioFrame, Audio: &eventabi.Audio{PCM: pcm, SampleRate: 16000, Channels: 1}}}},
	}
}

// BenchmarkTimelineAppend is the cost of one Append on the caller's (the
// session's) goroutine: the buffered writer against the unbuffered
// baseline, per record kind. x/unbuffered is the ratio to the baseline.
func BenchmarkTimelineAppend(b *testing.B) {
	for _, kind := range []string{"control", "input"} {
		rec := benchRecords()[kind]
		base := 0.0
		for _, w := range []string{"unbuffered", "buffered"} {
			b.Run("record="+kind+"/writer="+w, func(b *testing.B) {
				path := filepath.Join(b.TempDir(), "tl.jsonl")
				var tl Timeline
				var done func()
				switch w {
				case "unbuffered":
					f, err := os.Create(path)
					if err != nil {
						b.Fatal(err)
					}
					tl, done = &unbufferedJSONL{f: f}, func() { f.Close() }
				default:
					// Unbounded for the benchmark: every record is queued
					// and written, none takes the cheaper drop path.
					jl, err := CreateJSONLWith(path, WriterOptions{BufferBytes: 1 << 40})
					if err != nil {
						b.Fatal(err)
					}
					tl, done = jl, func() {
						jl.Close()
						if d := jl.DroppedInputs(); d > 0 {
							b.Fatalf("%d records dropped", d)
						}
					}
				}
				b.ReportAllocs()
				b.ResetTimer()
				start := time.Now()
				for i := 0; i < b.N; i++ {
					tl.Append(rec)
				}
				per := float64(time.Since(start).Nanoseconds()) / float64(b.N)
				b.StopTimer()
				done()
				if w == "unbuffered" {
					base = per
				} else if base > 0 {
					b.ReportMetric(per/base, "x/unbuffered")
				}
			})
		}
	}
}

// benchPools is a fake plugin pool for benchmarks: every input is taken
// at once, nothing is produced until the input closes.
type benchPools struct{}

type benchCall struct{ h externalnode.Handler }

func (benchPools) Open(_ string, _ externalnode.OpenRequest, _ []string, h externalnode.Handler) (Call, error) {
	return &benchCall{h: h}, nil
}
func (c *benchCall) Instance() string { return "bench" }
func (c *benchCall) Send(eventabi.Event) error {
	c.h.OnDelivered(1)
	return nil
}
func (c *benchCall) CloseInput() error {
	c.h.OnEnd(nil)
	return nil
}
func (c *benchCall) Cancel(string) {}

// BenchmarkSessionLoopTimeline is the session loop's latency per ingress
// audio frame (Ingest until the kernel's verdict, through the loop) with
// the timeline off, at level control and at level full on the buffered
// writer, and at level full on the unbuffered baseline. p50-us and p99-us
// per frame; x/off-p50 and x/off-p99 are ratios to the timeline off.
func BenchmarkSessionLoopTimeline(b *testing.B) {
	var off50, off99 float64
	for _, mode := range []string{"off", "control", "full", "full-unbuffered"} {
		b.Run("timeline="+mode, func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "tl.jsonl")
			cfg := Config{
				Kernel: kernel.SessionConfig{SessionID: "bench-1", Epoch: 1, VAD: kernel.VADConfig{Disabled: true},
					Graph: kernel.GraphSpec{
						Nodes: []kernel.NodeSpec{{ID: "n", Kind: "custom", Provider: "p", Timeout: time.Hour}},
						Edges: []kernel.EdgeSpec{{From: kernel.Ingress, To: "n"}, {From: "n", To: kernel.Egress}},
					}},
				Pools: benchPools{}, Tick: time.Hour,
			}
			var closeTL func()
			switch mode {
			case "control", "full":
				jl, err := CreateJSONLWith(path, WriterOptions{BufferBytes: 64 << 20})
				if err != nil {
					b.Fatal(err)
				}
				cfg.Timeline, closeTL = jl, func() { jl.Close() }
				cfg.Recording = record.Policy{Level: mode}
			case "full-unbuffered":
				f, err := os.Create(path)
				if err != nil {
					b.Fatal(err)
				}
				cfg.Timeline, closeTL = &unbufferedJSONL{f: f}, func() { f.Close() }
				cfg.Recording = record.Policy{Level: kernel.LevelFull}
			}
			s, err := Open(cfg)
			if err != nil {
				b.Fatal(err)
			}
			if err := s.Ingest(eventabi.Event{Type: eventabi.TypeSpeechStart}); err != nil {
				b.Fatal(err)
			}
			pcm := make([]byte, 640)
			frame := eventabi.Event{Type: eventabi.TypeAudioFrame, Audio: &eventabi.Audio{PCM: pcm, SampleRate: 16000, Channels: 1}}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				_ = s.Ingest(frame)
				lat = append(lat, time.Since(t0))
			}
			b.StopTimer()
			s.Close("bench done")
			if closeTL != nil {
				closeTL()
			}
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			p50 := float64(lat[len(lat)/2].Nanoseconds()) / 1e3
			p99 := float64(lat[len(lat)*99/100].Nanoseconds()) / 1e3
			b.ReportMetric(p50, "p50-us")
			b.ReportMetric(p99, "p99-us")
			if mode == "off" {
				off50, off99 = p50, p99
			} else if off50 > 0 {
				b.ReportMetric(p50/off50, "x/off-p50")
				b.ReportMetric(p99/off99, "x/off-p99")
			}
		})
	}
}
