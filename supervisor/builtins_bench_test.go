package supervisor_test

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/kernel/eventabi"
	"github.com/rspp/rspp/supervisor"
	"github.com/rspp/rspp/supervisor/internal/testplugin"
	"github.com/rspp/rspp/supervisor/internal/testrt"
	"github.com/rspp/rspp/test/stats"
)

// hopSamples per op: enough for a p99 at -benchtime=1s.
const hopSamples = 200

// invokeEcho opens one invocation on key through the Runtime (as the
// session driver does), sends one text and waits for its echo.
func invokeEcho(b *testing.B, rt *supervisor.Runtime, key, id string) time.Duration {
	got := make(chan struct{}, 4)
	t0 := time.Now()
	c, err := rt.Open(key, externalnode.OpenRequest{InvocationID: id, SessionID: "b", TurnID: "t", NodeID: "n"}, nil,
		externalnode.Handler{OnEvent: func(eventabi.Event) { got <- struct{}{} }, OnDelivered: func(int) {}, OnEnd: func(error) {}})
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Send(eventabi.Event{Type: eventabi.TypeTextFinal, Text: &eventabi.Text{Text: "ping", Final: true}}); err != nil {
		b.Fatal(err)
	}
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		b.Fatalf("no echo on %s", key)
	}
	d := time.Since(t0)
	c.Cancel("bench")
	return d
}

// BenchmarkInvocationHop: one invocation (open, one input, its output)
// served by a builtin in process vs by a plugin process (the test
// plugin's echo), interleaved in one run; builtin/plugin-p50 is the
// ratio of the medians.
func BenchmarkInvocationHop(b *testing.B) {
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cfg := "version: 1\nruntime:\n  state_dir: " + testplugin.ShortDir(b) + "\n  isolation: off\nproviders:\n" +
		"  echo:\n    kind: custom\n    binary: " + self + "\n    args: [" + testplugin.Arg + ", custom]\n    config: {role: echo}\n" +
		"  tap:\n    builtin: passthrough\n" +
		"pipeline:\n  nodes:\n    - {id: echo, provider: echo}\n    - {id: tap, provider: tap}\n" +
		"  edges:\n    - {from: ingress, to: echo}\n    - {from: echo, to: tap}\n    - {from: tap, to: egress}\n"
	path := filepath.Join(b.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		b.Fatal(err)
	}
	rt := testrt.Start(b, path, nil)
	plugin, _ := rt.Binding("echo")
	builtin, _ := rt.Binding("tap")
	var inProc, proc []time.Duration
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		for i := range hopSamples {
			id := strconv.Itoa(n) + "-" + strconv.Itoa(i)
			inProc = append(inProc, invokeEcho(b, rt, builtin.Pool, "b"+id))
			proc = append(proc, invokeEcho(b, rt, plugin.Pool, "p"+id))
		}
	}
	b.StopTimer()
	b.ReportMetric(0, "ns/op") // the figures are the percentiles
	p50b, p50p := stats.Duration(inProc, 0.5), stats.Duration(proc, 0.5)
	b.ReportMetric(float64(p50b.Nanoseconds())/1e3, "builtin-p50-us")
	b.ReportMetric(float64(stats.Duration(inProc, 0.99).Nanoseconds())/1e3, "builtin-p99-us")
	b.ReportMetric(float64(p50p.Nanoseconds())/1e3, "plugin-p50-us")
	b.ReportMetric(float64(stats.Duration(proc, 0.99).Nanoseconds())/1e3, "plugin-p99-us")
	b.ReportMetric(float64(p50b)/float64(p50p), "builtin/plugin-p50")
}
