package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/kernel/eventabi"
)

// floodNode emits 60 KiB text events as fast as it can until cancelled.
type floodNode struct{}

func (floodNode) Info() externalnode.Info {
	return externalnode.Info{Name: "bench-flood", Kind: "custom", Version: "0.0.0"}
}

func (floodNode) Configure(context.Context, externalnode.Config) error { return nil }

func (floodNode) Invoke(ctx context.Context, call *externalnode.Call) error {
	big := strings.Repeat("x", 60<<10)
	for ctx.Err() == nil {
		if err := call.EmitText(eventabi.TypeTextDelta, big, false); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// FloodRSS is the "supervisor_rss_under_flood" section of results.json:
// the host process's resident set while it echoes frames (baseline) and
// while a node floods it with 60 KiB events under the default output
// budget, each phase as long, in this one run.
type FloodRSS struct {
	PhaseSeconds     float64 `json:"phase_seconds"`
	BaselinePeakKiB  int64   `json:"baseline_peak_rss_kib"`
	FloodPeakKiB     int64   `json:"flood_peak_rss_kib"`
	GrowthKiB        int64   `json:"growth_kib"`
	PeakRatio        float64 `json:"flood_peak/baseline_peak"`
	Invocations      int     `json:"flood_invocations"`
	BudgetFailures   int     `json:"budget_failures"`
	BytesAccepted    int64   `json:"bytes_accepted"`
	FramesDroppedEnd int64   `json:"frames_dropped_after_budget"`
}

func selfRSSKiB() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var v int64
			fmt.Sscanf(strings.TrimSpace(rest), "%d", &v)
			return v
		}
	}
	return 0
}

// MeasureFloodRSS runs the two phases against plugin processes of self.
func MeasureFloodRSS(ctx context.Context, self, tmp string, phase time.Duration) (*FloodRSS, error) {
	frame := make([]byte, 640)
	echo, err := startRealPath(ctx, self, tmp, frame, 0)
	if err != nil {
		return nil, err
	}
	defer echo.close()
	dir, err := os.MkdirTemp(tmp, "rspp-bench-flood-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	flood, err := externalnode.Start(ctx, externalnode.StartConfig{Name: "bench/flood", Binary: self,
		Env: []string{PluginEnv + "=" + pluginFlood}, SocketDir: dir, StartTimeout: startTimeout})
	if err != nil {
		return nil, fmt.Errorf("flood plugin: %w", err)
	}
	defer flood.Kill()

	res := &FloodRSS{PhaseSeconds: phase.Seconds()}
	sample := func(peak *int64) {
		if v := selfRSSKiB(); v > *peak {
			*peak = v
		}
	}
	// Baseline: the same process doing honest work for as long.
	end := time.Now().Add(phase)
	next := time.Now()
	for time.Now().Before(end) {
		if err := echo.roundTrip(); err != nil {
			return nil, fmt.Errorf("baseline echo: %w", err)
		}
		if time.Now().After(next) {
			sample(&res.BaselinePeakKiB)
			next = time.Now().Add(50 * time.Millisecond)
		}
	}
	// Flood: invocation after invocation, each ended by its budget.
	var accepted atomic.Int64
	end = time.Now().Add(phase)
	for time.Now().Before(end) && ctx.Err() == nil {
		res.Invocations++
		done := make(chan error, 1)
		var inFlight atomic.Int64
		c, err := flood.Open(externalnode.OpenRequest{InvocationID: fmt.Sprintf("flood-%d", res.Invocations), SessionID: "s", TurnID: "t", NodeID: "flood"},
			externalnode.Handler{
				OnEvent: func(ev eventabi.Event) {
					n := externalnode.EventBytes(ev)
					accepted.Add(int64(n))
					inFlight.Add(-int64(n)) // consumed at once, as a fast session would
				},
				OnEnd:    func(err error) { done <- err },
				InFlight: &inFlight,
			})
		if err != nil {
			return nil, fmt.Errorf("flood open: %w", err)
		}
		tick := time.NewTicker(50 * time.Millisecond)
	wait:
		for {
			select {
			case err := <-done:
				if errors.Is(err, externalnode.ErrOutputBudget) {
					res.BudgetFailures++
				}
				break wait
			case <-tick.C:
				sample(&res.FloodPeakKiB)
			case <-ctx.Done():
				tick.Stop()
				return nil, ctx.Err()
			}
		}
		tick.Stop()
		sample(&res.FloodPeakKiB)
		select {
		case <-c.Finished(): // the plugin stopped on the budget's cancel
		case <-time.After(5 * time.Second):
			return nil, errors.New("flood plugin did not stop after its budget failed")
		}
		res.FramesDroppedEnd += c.BudgetRejectedFrames()
	}
	res.BytesAccepted = accepted.Load()
	res.GrowthKiB = res.FloodPeakKiB - res.BaselinePeakKiB
	if res.BaselinePeakKiB > 0 {
		res.PeakRatio = float64(res.FloodPeakKiB) / float64(res.BaselinePeakKiB)
	}
	return res, nil
}
