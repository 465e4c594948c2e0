package load

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rspp/rspp/supervisor"
)

// Histogram is a bounded latency histogram: 1 ms buckets up to 10 s and
// one overflow bucket. Its size never depends on how many samples it saw.
// Safe for concurrent use.
type Histogram struct {
	mu      sync.Mutex
	buckets [histBuckets + 1]uint32
	n       uint64
	max     time.Duration
}

const histBuckets = 10000 // 1 ms each

// Add records one sample (negative counts as 0).
func (h *Histogram) Add(d time.Duration) {
	i := int(d / time.Millisecond)
	if i < 0 {
		i = 0
	}
	if i > histBuckets {
		i = histBuckets
	}
	h.mu.Lock()
	h.buckets[i]++
	h.n++
	if d > h.max {
		h.max = d
	}
	h.mu.Unlock()
}

// Count is how many samples were added.
func (h *Histogram) Count() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}

// Quantile is the upper edge of the bucket holding quantile q (0..1), in
// milliseconds; 0 without samples. A sample past 10 s reads as the
// largest seen.
func (h *Histogram) Quantile(q float64) float64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n-1)) + 1
	var seen uint64
	for i, c := range h.buckets {
		seen += uint64(c)
		if seen >= rank {
			if i == histBuckets {
				return float64(h.max) / float64(time.Millisecond)
			}
			return float64(i + 1)
		}
	}
	return float64(h.max) / float64(time.Millisecond)
}

// Stats are what a load measures at its transport, per turn and per
// frame, in bounded form: latency from the scheduled end of each
// utterance to the first agent audio frame out, and egress frame
// lateness (how far each agent frame of a turn came after its real-time
// slot: the first frame's arrival plus 20 ms per frame).
type Stats struct {
	Latency   Histogram
	Lateness  Histogram
	FramesIn  atomic.Uint64 // frames fed
	FramesOut atomic.Uint64 // agent audio frames out
}

// connClock is one load connection's view for Stats: when its
// utterance ended, and where the current turn's egress is.
type connClock struct {
	stats      *Stats
	turnOpened func(time.Duration)

	mu        sync.Mutex
	speechAt  time.Time // first frame's slot of the current utterance; zero once its turn opened
	spokeAt   time.Time // scheduled end of the last utterance; zero once answered
	turn      string
	turnStart time.Time
	frames    int
}

// speaking marks the scheduled start of an utterance.
func (c *connClock) speaking(at time.Time) {
	if c.turnOpened == nil {
		return
	}
	c.mu.Lock()
	c.speechAt = at
	c.mu.Unlock()
}

// turnOpen reports the time since the utterance's start, once per
// utterance.
func (c *connClock) turnOpen(now time.Time) {
	if c.turnOpened == nil {
		return
	}
	c.mu.Lock()
	at := c.speechAt
	c.speechAt = time.Time{}
	c.mu.Unlock()
	if !at.IsZero() {
		c.turnOpened(now.Sub(at))
	}
}

// spoke marks the scheduled end of an utterance.
func (c *connClock) spoke(at time.Time) {
	if c.stats == nil {
		return
	}
	c.mu.Lock()
	c.spokeAt = at
	c.mu.Unlock()
}

// out records one agent audio frame of turn arriving now.
func (c *connClock) out(turn string, now time.Time) {
	if c.stats == nil {
		return
	}
	c.mu.Lock()
	if !c.spokeAt.IsZero() {
		c.stats.Latency.Add(now.Sub(c.spokeAt))
		c.spokeAt = time.Time{}
	}
	if turn != c.turn {
		c.turn, c.turnStart, c.frames = turn, now, 0
	}
	due := c.turnStart.Add(time.Duration(c.frames) * supervisor.FrameDuration)
	c.frames++
	c.mu.Unlock()
	c.stats.Lateness.Add(max(now.Sub(due), 0))
	c.stats.FramesOut.Add(1)
}

// Summary is the one-line JSON summary `rspp serve --realtime`
// prints at its end ("load: {...}"): what benchmarks read.
type Summary struct {
	LatencyP50Ms  float64          `json:"latency_p50_ms"` // scheduled end of utterance -> first agent frame out
	LatencyP99Ms  float64          `json:"latency_p99_ms"`
	Replies       uint64           `json:"replies"` // latency samples
	LatenessP99Ms float64          `json:"egress_lateness_p99_ms"`
	FramesIn      uint64           `json:"frames_in"`
	FramesOut     uint64           `json:"frames_out"`
	Refused       map[string]int64 `json:"refused,omitempty"`
}

// WriteSummary writes the load: {...} JSON line that ends a --realtime
// run (latency, lateness, frames, admission refusals).
func (s *Stats) WriteSummary(w io.Writer, adm supervisor.AdmissionStatus) {
	sum := Summary{LatencyP50Ms: s.Latency.Quantile(0.5), LatencyP99Ms: s.Latency.Quantile(0.99), Replies: s.Latency.Count(),
		LatenessP99Ms: s.Lateness.Quantile(0.99), FramesIn: s.FramesIn.Load(), FramesOut: s.FramesOut.Load(), Refused: adm.Refused}
	b, _ := json.Marshal(sum)
	fmt.Fprintf(w, "load: %s\n", b)
}
