package telemetry

import (
	"context"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

func TestCapacityGauges(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	var c Capacity
	ready := false
	if err := ObserveCapacity(mp.Meter(scope), func() (Capacity, bool) { return c, ready }); err != nil {
		t.Fatal(err)
	}
	collect := func() map[string]map[string]int64 {
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(context.Background(), &rm); err != nil {
			t.Fatal(err)
		}
		out := map[string]map[string]int64{}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				vals := map[string]int64{}
				var points []metricdata.DataPoint[int64]
				switch d := m.Data.(type) {
				case metricdata.Gauge[int64]:
					points = d.DataPoints
				case metricdata.Sum[int64]:
					points = d.DataPoints
				}
				for _, p := range points {
					key := ""
					for _, kv := range p.Attributes.ToSlice() {
						key += kv.Value.AsString()
					}
					vals[key] = p.Value
				}
				out[m.Name] = vals
			}
		}
		return out
	}
	if got := collect(); len(got["rspp.sessions"]) != 0 {
		t.Fatalf("observed before the runtime is up: %v", got)
	}
	c = Capacity{Sessions: 7, MaxSessions: 8, Refused: map[string]int64{"max_sessions": 3}, TurnsDeferred: 5, TurnsRejected: 1,
		Pools: []PoolLoad{{Pool: "stt#1", Instances: 3, Max: 4, Load: 9, Waiting: 2}}}
	ready = true
	got := collect()
	if got["rspp.sessions"][""] != 7 || got["rspp.sessions.max"][""] != 8 || got["rspp.admission.refused"]["max_sessions"] != 3 ||
		got["rspp.admission.turns"]["defer"] != 5 || got["rspp.admission.turns"]["reject"] != 1 ||
		got["rspp.pool.instances"]["stt#1"] != 3 || got["rspp.pool.load"]["stt#1"] != 9 || got["rspp.pool.waiting"]["stt#1"] != 2 {
		t.Fatalf("metrics %v", got)
	}
}
