package kbench

import "testing"

func TestRunReportsEveryBenchmark(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every benchmark")
	}
	got := Run()
	for _, k := range []string{"kernel_turn_open", "kernel_cancel_fence", "kernel_data_event_sessions_1", "kernel_data_event_sessions_100", "kernel_data_event_sessions_1000"} {
		m, ok := got[k].(map[string]any)
		if !ok || m["ns_per_op"].(int64) <= 0 {
			t.Fatalf("%s: %v", k, got[k])
		}
	}
}
