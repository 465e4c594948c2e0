package load

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rspp/rspp/supervisor/internal/testplugin"
	"github.com/rspp/rspp/supervisor/internal/testrt"
	"github.com/rspp/rspp/supervisor/pool"
	"github.com/rspp/rspp/test/stats"

	"github.com/rspp/rspp/supervisor/session"
)

// BenchmarkTenantNeighbour: tenant B's response latency (STT done ->
// turn committed, i.e. the LLM and the shared-provider TTS hops) on a
// tenant-profile TTS provider, alone and while tenant A's sessions on
// the same provider make it flood 5,000 frames and crash on every
// invocation, under the default restart policy (A's pool restarts with
// backoff, opens its circuit, tries half-open again: it keeps
// crash-looping at the pace the product allows). Rounds alternate alone /
// with-A in one run; the figure is the ratio of B's p99 with A to B's p99
// alone (target <= 1.2).
func BenchmarkTenantNeighbour(b *testing.B) {
	dir, bin := tenantBinary(b)
	cfgPath := tenantConfig(b, dir, bin, map[string]string{
		"tts":        "profile: tenant\noutput_budget: {events_per_s: 1000}",
		"tts.config": "crash_sessions: a-, flood: 5000",
		// What an operator sharing 2 cores between tenants sets: each
		// tenant instance gets a quarter core (its restarts included),
		// the flooding hop a thousand events a second.
		"tts.limits": "{memory_mb: 256, cpu: 0.25, pids: 128}",
		"stt.limits": "{memory_mb: 256, cpu: 0.25, pids: 128}",
		"llm.limits": "{memory_mb: 256, cpu: 0.25, pids: 128}",
		// Every hop is a tenant provider: B's turns touch no instance of A.
		"stt": "profile: tenant",
		"llm": "profile: tenant",
	})
	var crashesA atomic.Int64
	rt := startTenantRuntime(b, cfgPath, bin, func(ev pool.Event) {
		if ev.Type == "crashed" && strings.Contains(ev.Pool, "tenant=a") {
			crashesA.Add(1)
		}
	})
	utter := [][]byte{testplugin.Tone(400 * time.Millisecond)}
	runB := func(prefix string) (lat []time.Duration, aborts int) {
		tl := &session.Collector{}
		// 16 sessions x 8 turns a round, 3 rounds: ~380 turns a phase, so
		// that p99 is not simply the slowest of a few dozen.
		Run(context.Background(), rt, Options{Sessions: 16, Utterances: utter, Gap: 700 * time.Millisecond, Turns: 8,
			Realtime: true, Stagger: 50 * time.Millisecond, Tenants: []string{"b"}, Prefix: prefix, Timeline: tl})
		recs := tl.Records()
		sttEnd := map[string]int64{}
		for _, r := range recs {
			k := r.SessionID + "/" + r.TurnID
			switch {
			case r.Type == "invocation_end" && r.NodeID == "stt":
				sttEnd[k] = r.MonoNanos
			case r.Type == "turn_commit":
				if t0, ok := sttEnd[k]; ok {
					lat = append(lat, time.Duration(r.MonoNanos-t0))
				}
			case r.Type == "turn_abort":
				aborts++
			}
		}
		return lat, aborts
	}
	// Warm B's pool (and the page cache) before measuring.
	runB("warm")
	var alone, withA []time.Duration
	abortsB := 0
	for n := 0; n < b.N; n++ {
		for round := range 3 {
			lat, ab := runB(fmt.Sprintf("b%d-%d-alone", n, round))
			alone, abortsB = append(alone, lat...), abortsB+ab
			stopA := make(chan struct{})
			doneA := make(chan struct{})
			go func() {
				defer close(doneA)
				Run(context.Background(), rt, Options{Sessions: 6, Utterances: utter, Gap: 500 * time.Millisecond,
					Realtime: true, Tenants: []string{"a"}, Prefix: "a", Stop: stopA, Timeline: &session.Collector{}})
			}()
			time.Sleep(500 * time.Millisecond) // A is crash-looping
			lat, ab = runB(fmt.Sprintf("b%d-%d-with-a", n, round))
			withA, abortsB = append(withA, lat...), abortsB+ab
			close(stopA)
			<-doneA
		}
	}
	b.StopTimer()
	pct := func(d []time.Duration, q float64) float64 { return float64(stats.Duration(d, q).Microseconds()) / 1000 }
	p99 := func(d []time.Duration) float64 { return pct(d, 0.99) }
	ma, mw := pct(alone, 0.5), pct(withA, 0.5)
	b.ReportMetric(ma, "b-alone-p50-ms")
	b.ReportMetric(mw, "b-with-a-p50-ms")
	if ma > 0 {
		b.ReportMetric(mw/ma, "p50-ratio")
	}
	pa, pw := p99(alone), p99(withA)
	b.ReportMetric(pa, "b-alone-p99-ms")
	b.ReportMetric(pw, "b-with-a-p99-ms")
	if pa > 0 {
		b.ReportMetric(pw/pa, "p99-ratio")
	}
	b.ReportMetric(float64(len(alone)+len(withA)), "b-turns")
	b.ReportMetric(float64(abortsB), "b-aborts")
	b.ReportMetric(float64(crashesA.Load()), "a-crashes")
}

// BenchmarkTenantQuotaNeighbour: tenant B's turn-open latency (an
// utterance's first frame slot -> the turn-open notice at its transport:
// the VAD's onset plus whatever held the session up) alone, and while
// tenant A's sessions keep speaking over their turn quota (admission
// tenants.a.turns: 1, so A's turns are deferred and rejected the whole
// time). Rounds alternate alone / with-A in one run; the figure is the
// ratio of B's p99 with A to B's p99 alone (RK-10: A at its quota never
// delays B's turn_open).
func BenchmarkTenantQuotaNeighbour(b *testing.B) {
	cfgPath := testplugin.Config(b, b.TempDir(), nil, "")
	f, err := os.OpenFile(cfgPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	_, err = f.WriteString("admission:\n  tenants: {a: {turns: 1}}\n")
	_ = f.Close()
	if err != nil {
		b.Fatal(err)
	}
	rt := testrt.Start(b, cfgPath, nil)
	utter := [][]byte{testplugin.Tone(400 * time.Millisecond)}
	runB := func(prefix string) []time.Duration {
		var mu sync.Mutex
		var lat []time.Duration
		Run(context.Background(), rt, Options{Sessions: 8, Utterances: utter, Gap: 700 * time.Millisecond, Turns: 8,
			Realtime: true, Stagger: 80 * time.Millisecond, Tenants: []string{"b"}, Prefix: prefix, Polite: true,
			TurnOpened: func(d time.Duration) { mu.Lock(); lat = append(lat, d); mu.Unlock() }})
		return lat
	}
	runB("warm")
	var alone, withA []time.Duration
	aTimeline := &session.Collector{}
	for n := 0; n < b.N; n++ {
		for round := range 3 {
			alone = append(alone, runB(fmt.Sprintf("b%d-%d-alone", n, round))...)
			stopA := make(chan struct{})
			doneA := make(chan struct{})
			go func() {
				defer close(doneA)
				Run(context.Background(), rt, Options{Sessions: 12, Utterances: utter, Gap: 300 * time.Millisecond,
					Realtime: true, Stagger: 25 * time.Millisecond, Tenants: []string{"a"}, Prefix: fmt.Sprintf("a%d-%d", n, round), Stop: stopA, Timeline: aTimeline})
			}()
			time.Sleep(700 * time.Millisecond) // A is over its quota
			withA = append(withA, runB(fmt.Sprintf("b%d-%d-with-a", n, round))...)
			close(stopA)
			<-doneA
		}
	}
	b.StopTimer()
	deferred, rejected := 0, 0
	for _, r := range aTimeline.Records() {
		switch r.Type {
		case "pre_turn_defer":
			deferred++
		case "pre_turn_reject":
			rejected++
		}
	}
	if deferred == 0 {
		b.Fatal("tenant A was never deferred: it was not at its quota, the figure would mean nothing")
	}
	ms := func(d []time.Duration, q float64) float64 { return float64(stats.Duration(d, q).Microseconds()) / 1000 }
	pa, pw := ms(alone, 0.99), ms(withA, 0.99)
	b.ReportMetric(ms(alone, 0.5), "b-alone-p50-ms")
	b.ReportMetric(ms(withA, 0.5), "b-with-a-p50-ms")
	b.ReportMetric(pa, "b-alone-p99-ms")
	b.ReportMetric(pw, "b-with-a-p99-ms")
	if pa > 0 {
		b.ReportMetric(pw/pa, "p99-ratio")
	}
	b.ReportMetric(float64(len(alone)+len(withA)), "b-turns")
	b.ReportMetric(float64(deferred), "a-deferred")
	b.ReportMetric(float64(rejected), "a-rejected")
}
