package telemetry

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/supervisor/session"
)

// trace is a timeline as the kernel writes it: one committed turn, one
// turn aborted because tts crashed.
func timeline() []kernel.TimelineRecord {
	rec := func(typ, turn, node, inv, reason string, mono int64, attrs map[string]string) kernel.TimelineRecord {
		return kernel.TimelineRecord{SessionID: "s1", Type: typ, TurnID: turn, NodeID: node, InvocationID: inv, Reason: reason, MonoNanos: mono, Attrs: attrs}
	}
	return []kernel.TimelineRecord{
		rec("session_open", "", "", "", "", 0, map[string]string{"tenant_id": "acme"}),
		rec("turn_open", "t1", "", "", "", 1e9, map[string]string{"plan_hash": "abc", "binding.tts": "espeak@1.51.0"}),
		rec("invocation_start", "t1", "tts", "i1", "", 1e9, map[string]string{"binding": "espeak@1.51.0"}),
		rec("invocation_end", "t1", "tts", "i1", "ok", 2e9, nil),
		rec("turn_commit", "t1", "", "", "", 2e9, nil),
		rec("turn_close", "t1", "", "", "", 3e9, nil),
		rec("turn_open", "t2", "", "", "", 4e9, map[string]string{"plan_hash": "abc"}),
		rec("invocation_start", "t2", "tts", "i2", "", 4e9, nil),
		rec("invocation_fail", "t2", "tts", "i2", "node tts failed: plugin crashed", 5e9, map[string]string{"kind": "crashed", "decision": "abort"}),
		rec("fence", "t2", "", "", "node tts failed", 5e9, nil),
		rec("egress_drop", "t2", "", "", "output after fence", 5e9, map[string]string{"count": "3"}),
		rec("turn_abort", "t2", "", "", "node tts failed: plugin crashed", 5e9, nil),
		rec("turn_close", "t2", "", "", "", 5e9, nil),
		rec("session_close", "", "", "", "session_close", 6e9, nil),
	}
}

func TestSpansFollowTheTimeline(t *testing.T) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	r, err := New(tp, mp)
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range timeline() {
		r.Append(rec)
	}
	spans := sr.Ended()
	byName := map[string][]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		byName[s.Name()] = append(byName[s.Name()], s)
	}
	if len(byName["session"]) != 1 || len(byName["turn"]) != 2 || len(byName["invoke tts"]) != 2 {
		t.Fatalf("spans: %v", names(spans))
	}
	session := byName["session"][0]
	for _, turn := range byName["turn"] {
		if turn.Parent().SpanID() != session.SpanContext().SpanID() {
			t.Fatal("turn span is not a child of its session span")
		}
		if !hasAttr(turn.Attributes(), "rspp.session_id", "s1") || !hasAttr(turn.Attributes(), "rspp.plan_hash", "abc") {
			t.Fatalf("turn span lacks correlation: %v", turn.Attributes())
		}
	}
	aborted := byName["turn"][1]
	if aborted.Status().Code != codes.Error || !hasAttr(aborted.Attributes(), "rspp.outcome", "abort") {
		t.Fatalf("aborted turn status %v attrs %v", aborted.Status(), aborted.Attributes())
	}
	if byName["invoke tts"][1].Status().Code != codes.Error || byName["invoke tts"][0].Status().Code != codes.Ok {
		t.Fatal("invocation span statuses do not follow invocation_end/invocation_fail")
	}
	if byName["invoke tts"][0].Parent().SpanID() != byName["turn"][0].SpanContext().SpanID() {
		t.Fatal("invocation span is not a child of its turn")
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	sums := map[string]map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if s, ok := m.Data.(metricdata.Sum[int64]); ok {
				sums[m.Name] = map[string]int64{}
				for _, dp := range s.DataPoints {
					sums[m.Name][dp.Attributes.Encoded(attribute.DefaultEncoder())] += dp.Value
				}
			}
		}
	}
	if got := sums["rspp.turns"]["outcome=commit,tenant=acme"]; got != 1 {
		t.Errorf("committed turns = %d, want 1 (%v)", got, sums["rspp.turns"])
	}
	if got := sums["rspp.turns"]["outcome=abort,tenant=acme"]; got != 1 {
		t.Errorf("aborted turns = %d, want 1", got)
	}
	if got := sums["rspp.node.failures"]["decision=abort,kind=crashed,node=tts,tenant=acme"]; got != 1 {
		t.Errorf("failures = %v", sums["rspp.node.failures"])
	}
	if got := sums["rspp.egress.dropped"]["tenant=acme"]; got != 3 {
		t.Errorf("egress drops = %d, want 3", got)
	}
}

func TestStartExportsTracesAndMetrics(t *testing.T) {
	path := filepath.Join(t.TempDir(), "traces.jsonl")
	s, err := Start(Config{TracesFile: path, MetricsAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range timeline() {
		s.Recorder.Append(rec)
	}
	resp, err := http.Get("http://" + s.MetricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `rspp_turns_total{`) || !strings.Contains(string(body), `kind="crashed"`) {
		t.Fatalf("metrics page lacks rspp_turns_total / kind=crashed:\n%s", body)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal("second shutdown:", err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(raw), `"Name":"turn"`); n != 2 {
		t.Fatalf("traces file has %d turn spans, want 2", n)
	}
	if !strings.Contains(string(raw), `"rspp.session_id"`) {
		t.Fatal("traces lack the session correlation attribute")
	}
}

func names(spans []sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name())
	}
	return out
}

func hasAttr(attrs []attribute.KeyValue, k, v string) bool {
	for _, a := range attrs {
		if string(a.Key) == k && a.Value.Emit() == v {
			return true
		}
	}
	return false
}

// A failure in a tenant's node counts against that tenant, not the
// tenant of the session it happened to serve.
func TestFailuresAttributedToTheNodesTenant(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	r, err := New(sdktrace.NewTracerProvider(), sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)), WithNodeTenants(map[string]string{"tts": "globex"}))
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range timeline() {
		r.Append(rec)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "rspp.node.failures" {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				if v, _ := dp.Attributes.Value("tenant"); v.AsString() != "globex" {
					t.Fatalf("failure attributed to tenant %q, want globex (the node's)", v.AsString())
				}
				return
			}
		}
	}
	t.Fatal("no rspp.node.failures data point")
}

// A closed session's session_stats record reaches the metrics: its
// counters are summed per counter over sessions.
func TestSessionCountersReachMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	r, err := New(sdktrace.NewTracerProvider(), sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"a", "b"} {
		r.Append(kernel.TimelineRecord{SessionID: s, Type: session.TypeSessionStats, Attrs: map[string]string{"dropped_node_events": "3", "shed": "2"}})
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "rspp.session.counters" {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				v, _ := dp.Attributes.Value("counter")
				got[v.AsString()] = dp.Value
			}
		}
	}
	if got["dropped_node_events"] != 6 || got["shed"] != 4 {
		t.Fatalf("rspp.session.counters %v, want dropped_node_events 6, shed 4", got)
	}
}
