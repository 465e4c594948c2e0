package openaitest_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/kernel/eventabi"
	"github.com/rspp/rspp/providers/openai/chat"
	"github.com/rspp/rspp/providers/openai/openaitest"
)

// BenchmarkTimeToFirstToken measures, interleaved in one run against the
// same local endpoint, the time from asking to the first token:
//
//	direct: a bare HTTP streaming request, to the first content chunk;
//	node:   the chat engine in process (client library, our retry and
//	        emit path), to its first text.delta;
//	plugin: the openai plugin process over the plugin boundary (gRPC on a
//	        unix socket), from opening the invocation to its first
//	        text.delta at the host.
//
// It reports each path's p50 and the plugin/direct ratio (the cost of the
// provider layer). The plugin path needs bin/providers/openai (make build)
// and is skipped, saying so, without it.
func BenchmarkTimeToFirstToken(b *testing.B) {
	s, err := openaitest.Start()
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	s.TokenDelay, s.FirstTokenDelay = time.Millisecond, time.Millisecond
	s.Reply = func(string) string { return "it is time to test" }
	cfg, _ := json.Marshal(map[string]any{"base_url": s.BaseURL, "model": "bench", "history_turns": -1})
	node := chat.New("bench")
	if err := node.Configure(context.Background(), externalnode.Config{NodeID: "llm", Raw: cfg}); err != nil {
		b.Fatal(err)
	}
	bin, _ := filepath.Abs("../../../bin/providers/openai")
	var inst *externalnode.Instance
	if _, err := os.Stat(bin); err == nil {
		sock, err := os.MkdirTemp("", "rb")
		if err != nil {
			b.Fatal(err)
		}
		defer os.RemoveAll(sock)
		inst, err = externalnode.Start(context.Background(), externalnode.StartConfig{Name: "llm/openai", Binary: bin, SocketDir: sock})
		if err != nil {
			b.Fatal(err)
		}
		defer inst.Kill()
		if err := inst.Configure(context.Background(), externalnode.Config{NodeID: "llm", Raw: cfg}); err != nil {
			b.Fatal(err)
		}
	} else {
		b.Logf("plugin path skipped: %s not built (make build)", bin)
	}
	hc := &http.Client{}
	body := `{"model":"bench","stream":true,"messages":[{"role":"user","content":"what time is it"}]}`
	var direct, inproc, plugin []time.Duration
	b.ResetTimer()
	for i := range b.N {
		d, err := directTTFT(hc, s.BaseURL, body)
		if err != nil {
			b.Fatal(err)
		}
		direct = append(direct, d)
		n, err := nodeTTFT(node)
		if err != nil {
			b.Fatal(err)
		}
		inproc = append(inproc, n)
		if inst != nil {
			p, err := pluginTTFT(inst, i)
			if err != nil {
				b.Fatal(err)
			}
			plugin = append(plugin, p)
		}
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(p50(direct)), "direct-p50-ms")
	b.ReportMetric(ms(p50(inproc)), "node-p50-ms")
	if len(plugin) > 0 {
		b.ReportMetric(ms(p50(plugin)), "plugin-p50-ms")
		b.ReportMetric(float64(p50(plugin))/float64(p50(direct)), "plugin/direct")
	}
}

func p50(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// directTTFT reads the SSE stream by hand to the first content chunk.
func directTTFT(hc *http.Client, base, body string) (time.Duration, error) {
	start := time.Now()
	resp, err := hc.Post(base+"/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	var first time.Duration
	for sc.Scan() {
		if first == 0 && strings.Contains(sc.Text(), `"content"`) {
			first = time.Since(start)
		}
	}
	if first == 0 {
		return 0, fmt.Errorf("no content chunk")
	}
	return first, sc.Err()
}

func nodeTTFT(n *chat.Node) (time.Duration, error) {
	in := make(chan eventabi.Event, 1)
	in <- eventabi.Event{Type: eventabi.TypeTextFinal, Text: &eventabi.Text{Text: "what time is it", Final: true}}
	close(in)
	var first time.Duration
	var start time.Time
	call := externalnode.NewTestCall("inv", "s", "t", "llm", in, func(ev eventabi.Event) error {
		if first == 0 && ev.Type == eventabi.TypeTextDelta {
			first = time.Since(start)
		}
		return nil
	})
	start = time.Now()
	if err := n.Invoke(context.Background(), call); err != nil {
		return 0, err
	}
	return first, nil
}

func pluginTTFT(inst *externalnode.Instance, i int) (time.Duration, error) {
	firstCh := make(chan time.Duration, 1)
	endCh := make(chan error, 1)
	var start time.Time
	got := false
	h := externalnode.Handler{
		OnEvent: func(ev eventabi.Event) {
			if !got && ev.Type == eventabi.TypeTextDelta {
				got = true
				firstCh <- time.Since(start)
			}
		},
		OnEnd: func(err error) { endCh <- err },
	}
	start = time.Now()
	c, err := inst.Open(externalnode.OpenRequest{InvocationID: fmt.Sprintf("inv-%d", i), SessionID: "s", TurnID: fmt.Sprintf("t-%d", i), NodeID: "llm"}, h)
	if err != nil {
		return 0, err
	}
	if err := c.Send(eventabi.Event{Type: eventabi.TypeTextFinal, SessionID: "s", TurnID: fmt.Sprintf("t-%d", i), Lane: eventabi.LaneData,
		SchemaVersion: eventabi.SchemaVersion, Text: &eventabi.Text{Text: "what time is it", Final: true}}); err != nil {
		return 0, err
	}
	if err := c.CloseInput(); err != nil {
		return 0, err
	}
	if err := <-endCh; err != nil {
		return 0, err
	}
	select {
	case d := <-firstCh:
		return d, nil
	default:
		return 0, fmt.Errorf("the plugin emitted no text.delta")
	}
}
