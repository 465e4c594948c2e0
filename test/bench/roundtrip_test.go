package bench

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestRoundTripSmoke runs the three measurements with a small N. It checks
// that each produced N samples and sane figures, and that every process and
// socket is gone afterwards. It asserts no timing: that is the driver's
// job, as ratios in one run.
func TestRoundTripSmoke(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tmp := shortTempDir(t)
	var pids []int
	const n = 200
	res, err := MeasureRoundTrips(context.Background(), RoundTripConfig{
		Self: self, TempDir: tmp, Samples: n, Warmup: 20, Rounds: 4, Timeout: 2 * time.Minute,
		started: func(p []int) { pids = p },
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.FrameBytes != 640 {
		t.Fatalf("frame bytes = %d", res.FrameBytes)
	}
	for name, s := range map[string]Summary{NameRealPath: res.RealPath, NameBareGRPC: res.BareGRPC, NameRawUnix: res.RawUnix, NameSessionPath: res.SessionPath,
		NameRealWindow1: res.RealWindow1, NameRealWindowMax: res.RealWindowMax} {
		if s.N != n {
			t.Errorf("%s: %d samples, want %d", name, s.N, n)
		}
		for fig, v := range map[string]float64{"p50": s.P50us, "p99": s.P99us, "mean": s.MeanUs, "min": s.MinUs, "max": s.MaxUs} {
			if !(v > 0) || math.IsInf(v, 0) {
				t.Errorf("%s: %s = %v, want a positive number", name, fig, v)
			}
		}
		if !(s.MinUs <= s.P50us && s.P50us <= s.P99us && s.P99us <= s.MaxUs) {
			t.Errorf("%s: figures out of order: %+v", name, s)
		}
	}
	for _, k := range []string{"real/bare", "real/raw", "bare/raw", "session/real", "session/bare", "real/window_4096", "window_1/window_4096"} {
		if r, ok := res.Ratios[k]; !ok || !(r.P50 > 0 && r.P99 > 0 && r.Mean > 0) {
			t.Errorf("ratio %s = %+v", k, r)
		}
	}

	if len(pids) != 6 {
		t.Fatalf("pids = %v", pids)
	}
	for _, pid := range pids {
		if pid <= 0 {
			t.Fatalf("pids = %v", pids)
		}
		// Reaped children are gone; an unreaped one would still answer as a
		// zombie.
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("plugin pid %d still exists after the measurement (%v)", pid, err)
		}
	}
	left, _ := filepath.Glob(filepath.Join(tmp, "*"))
	if len(left) != 0 {
		t.Errorf("left behind in the temp dir: %v", left)
	}
	// externalnode's fork thread lives as long as the process, by design.
	goleak.VerifyNone(t, goleak.IgnoreAnyFunction("github.com/rspp/rspp/externalnode.OnSpawnThread.func1.1"))
}

func TestMeasureRoundTripsNeedsABinary(t *testing.T) {
	if _, err := MeasureRoundTrips(context.Background(), RoundTripConfig{}); err == nil {
		t.Fatal("no error without a binary to re-execute")
	}
}

// The flood measurement ends every flood invocation by its budget, keeps
// the host's RSS within a bound of the echo baseline and stops its plugins.
func TestFloodRSSSmoke(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	res, err := MeasureFloodRSS(context.Background(), self, t.TempDir(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", *res)
	if res.Invocations == 0 || res.BudgetFailures < res.Invocations-1 {
		t.Fatalf("%d flood invocations, %d ended by the budget", res.Invocations, res.BudgetFailures)
	}
	if res.BaselinePeakKiB <= 0 || res.FloodPeakKiB <= 0 || res.GrowthKiB >= 64<<10 {
		t.Fatalf("RSS baseline %d KiB, flood %d KiB", res.BaselinePeakKiB, res.FloodPeakKiB)
	}
}
