package supervisor

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/isolation"
	"github.com/rspp/rspp/kernel/eventabi"
	"github.com/rspp/rspp/supervisor/session"
)

// samplesPerOp: each benchmark op takes this many samples so that a p99
// means something at -benchtime=1s (where b.N is 1 for these).
const samplesPerOp = 20

// percentile is the nearest-rank quantile q of d (sorted in place).
func percentile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	i := int(q*float64(len(d))+0.999999) - 1
	return d[min(max(i, 0), len(d)-1)]
}

func reportPercentiles(b *testing.B, d []time.Duration) {
	b.Helper()
	if len(d) == 0 {
		return
	}
	b.ReportMetric(float64(percentile(d, 0.50).Microseconds()), "p50-us")
	b.ReportMetric(float64(percentile(d, 0.99).Microseconds()), "p99-us")
	b.ReportMetric(float64(len(d)), "samples")
}

// echoOnce opens an invocation, sends one event and waits for its echo:
// one invocation served end to end.
func echoOnce(p *Pool, id string) bool {
	got := make(chan bool, 2)
	c, err := p.Open(externalnode.OpenRequest{InvocationID: id, SessionID: "b", TurnID: "t", NodeID: "echo"}, nil,
		externalnode.Handler{
			OnEvent: func(eventabi.Event) { got <- true },
			OnEnd:   func(err error) { got <- err == nil },
		})
	if err != nil {
		return false
	}
	ev := eventabi.Event{Type: eventabi.TypeTextFinal, Lane: eventabi.LaneData, SchemaVersion: eventabi.SchemaVersion,
		Text: &eventabi.Text{Text: "ping", Final: true}}
	if c.Send(ev) != nil {
		c.Cancel("bench")
		return false
	}
	select {
	case ok := <-got:
		c.Cancel("bench")
		return ok
	case <-time.After(5 * time.Second):
		c.Cancel("bench")
		return false
	}
}

// benchCrash SIGKILLs a ready instance per sample and measures detection
// (SIGKILL -> instance marked crashed) and replacement (SIGKILL -> the next
// invocation served) with warm instances.
func benchCrash(b *testing.B, warm int) {
	log := newEventLog()
	p, _ := testPool(b, func(c *PoolConfig) {
		c.Warm = warm
		c.Events = log.add
		c.Restart = RestartPolicy{Intensity: 1 << 20, BackoffBase: time.Microsecond, BackoffMax: time.Microsecond}
	})
	var detect, replace []time.Duration
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		for i := range samplesPerOp {
			// Wait until the pool is back to full strength.
			for len(p.Instances()) < warm {
				time.Sleep(time.Millisecond)
			}
			victim := p.Instances()[0]
			t0 := time.Now()
			_ = syscall.Kill(victim.Pid(), syscall.SIGKILL)
			for k := 0; !echoOnce(p, "s"+strconv.Itoa(n)+"-"+strconv.Itoa(i)+"-"+strconv.Itoa(k)); k++ {
			}
			replace = append(replace, time.Since(t0))
			ev := log.wait(b, "crashed", func(ev PoolEvent) bool { return ev.Type == "crashed" && ev.Instance == victim.Name() })
			detect = append(detect, ev.At.Sub(t0))
		}
	}
	b.StopTimer()
	b.Run("detect", func(b *testing.B) { reportPercentiles(b, detect) })
	b.Run("replace", func(b *testing.B) { reportPercentiles(b, replace) })
}

// BenchmarkCrash/standby: crash detection and replacement latency with a
// warm standby (2 instances); /no-standby: with one instance, so the next
// invocation waits for the restart.
func BenchmarkCrash(b *testing.B) {
	b.Run("standby", func(b *testing.B) { benchCrash(b, 2) })
	b.Run("no-standby", func(b *testing.B) { benchCrash(b, 1) })
}

// BenchmarkColdStart: launch + handshake + Configure of one plugin
// instance, plain and (as root) through the trusted isolation profile.
func BenchmarkColdStart(b *testing.B) {
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	run := func(b *testing.B, l Launch) {
		l.Binary, l.Args, l.SocketDir = self, []string{testPluginArg}, b.TempDir()
		var d []time.Duration
		for n := 0; n < b.N; n++ {
			for range samplesPerOp {
				t0 := time.Now()
				p, err := StartPool(context.Background(), PoolConfig{Key: "cold#1", Provider: "cold", Launch: l,
					ConfigJSON: []byte(`{"role":"echo"}`), HealthInterval: -1})
				if err != nil {
					b.Fatal(err)
				}
				d = append(d, time.Since(t0))
				p.Close()
			}
		}
		reportPercentiles(b, d)
	}
	b.Run("plain", func(b *testing.B) { run(b, Launch{}) })
	// The same start with go-plugin's AutoMTLS (runtime.plugin_channel: mtls).
	b.Run("plain-mtls", func(b *testing.B) { run(b, Launch{Channel: externalnode.ChannelMTLS}) })
	b.Run("isolated", func(b *testing.B) {
		envs, err := isolation.OpenEnvelopes(isolation.EnvelopesConfig{})
		if err != nil {
			b.Skipf("no cgroup envelopes here: %v", err)
		}
		defer envs.Close()
		prof, _ := isolation.ProfileByName("trusted")
		run(b, Launch{Envelopes: envs, Profile: prof})
	})
}

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
	rt := startTenantRuntime(b, cfgPath, bin, func(ev PoolEvent) {
		if ev.Type == "crashed" && strings.Contains(ev.Pool, "tenant=a") {
			crashesA.Add(1)
		}
	})
	utter := [][]byte{tone(400 * time.Millisecond)}
	runB := func(prefix string) (lat []time.Duration, aborts int) {
		tl := &session.Collector{}
		// 16 sessions x 8 turns a round, 3 rounds: ~380 turns a phase, so
		// that p99 is not simply the slowest of a few dozen.
		RunLoad(context.Background(), rt, LoadOptions{Sessions: 16, Utterances: utter, Gap: 700 * time.Millisecond, Turns: 8,
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
				RunLoad(context.Background(), rt, LoadOptions{Sessions: 6, Utterances: utter, Gap: 500 * time.Millisecond,
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
	pct := func(d []time.Duration, q float64) float64 { return float64(percentile(d, q).Microseconds()) / 1000 }
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
	cfgPath := testConfig(b, b.TempDir(), nil, "")
	f, err := os.OpenFile(cfgPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	_, err = f.WriteString("admission:\n  tenants: {a: {turns: 1}}\n")
	_ = f.Close()
	if err != nil {
		b.Fatal(err)
	}
	rt := startRuntime(b, cfgPath, nil)
	utter := [][]byte{tone(400 * time.Millisecond)}
	runB := func(prefix string) []time.Duration {
		var mu sync.Mutex
		var lat []time.Duration
		RunLoad(context.Background(), rt, LoadOptions{Sessions: 8, Utterances: utter, Gap: 700 * time.Millisecond, Turns: 8,
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
				RunLoad(context.Background(), rt, LoadOptions{Sessions: 12, Utterances: utter, Gap: 300 * time.Millisecond,
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
	ms := func(d []time.Duration, q float64) float64 { return float64(percentile(d, q).Microseconds()) / 1000 }
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
