package pool

import (
	"context"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/isolation"
	"github.com/rspp/rspp/kernel/eventabi"
	"github.com/rspp/rspp/supervisor/internal/testplugin"
	"github.com/rspp/rspp/test/stats"
)

// samplesPerOp: each benchmark op takes this many samples so that a p99
// means something at -benchtime=1s (where b.N is 1 for these).
const samplesPerOp = 20

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
	log := testplugin.NewEventLog[Event]()
	p, _ := testPool(b, func(c *Config) {
		c.Warm = warm
		c.Events = log.Add
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
			ev := log.Wait(b, "crashed", func(ev Event) bool { return ev.Type == "crashed" && ev.Instance == victim.Name() })
			detect = append(detect, ev.At.Sub(t0))
		}
	}
	b.StopTimer()
	// The figures are the percentiles; a time per op of a loop of kills
	// and waits would mean nothing, so ns/op is suppressed.
	b.ReportMetric(0, "ns/op")
	b.Run("detect", func(b *testing.B) { stats.Report(b, detect); b.ReportMetric(0, "ns/op") })
	b.Run("replace", func(b *testing.B) { stats.Report(b, replace); b.ReportMetric(0, "ns/op") })
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
		l.Binary, l.Args, l.SocketDir = self, []string{testplugin.Arg}, b.TempDir()
		var d []time.Duration
		for n := 0; n < b.N; n++ {
			for range samplesPerOp {
				t0 := time.Now()
				p, err := Start(context.Background(), Config{Key: "cold#1", Provider: "cold", Launch: l,
					ConfigJSON: []byte(`{"role":"echo"}`), HealthInterval: -1})
				if err != nil {
					b.Fatal(err)
				}
				d = append(d, time.Since(t0))
				p.Close()
			}
		}
		stats.Report(b, d)
		b.ReportMetric(0, "ns/op") // samplesPerOp starts per op: the percentiles are the figure
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
