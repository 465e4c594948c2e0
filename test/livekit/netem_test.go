package livekit

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/rspp/rspp/test/testenv"
	"github.com/rspp/rspp/transports/livekit/lkclient"
)

// faults puts 5 % loss and 60 ms of jitter on the test network: tc netem
// on lo (the veth addresses are local to the namespace, so their packets
// go through lo) where the kernel has sch_netem, else the same figures
// emulated at the participant's RTP layer, both ways. It says which.
func faults(t *testing.T) (lkclient.Impair, string) {
	t.Helper()
	out, err := exec.Command("tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "30ms", "30ms", "loss", "5%").CombinedOutput()
	if err == nil {
		t.Cleanup(func() { _ = exec.Command("tc", "qdisc", "del", "dev", "lo", "root").Run() })
		return lkclient.Impair{}, "tc netem on lo: delay 30ms ± 30ms, loss 5 %"
	}
	t.Logf("tc netem unavailable (%s): emulating the faults at the participant's RTP layer", string(out))
	return lkclient.Impair{Loss: 0.05, Jitter: 60 * time.Millisecond}, "participant RTP, both ways: loss 5 %, jitter uniform 0-60 ms"
}

// TestNetworkFaults: with 5 % loss and 60 ms jitter between the
// participant and the server, turns still commit, barge-in still fences;
// first-audio and fence latency are printed with and without the faults.
func TestNetworkFaults(t *testing.T) {
	requireEnv(t)
	ctx := context.Background()
	w := startWorker(t, "netem")
	if err := dispatch(ctx, "netem-clean", "netem"); err != nil {
		t.Fatal(err)
	}
	clean := runBargeIn(t, join(t, "netem-clean", "carol", lkclient.Options{}))
	im, how := faults(t)
	if err := dispatch(ctx, "netem-faulty", "netem"); err != nil {
		t.Fatal(err)
	}
	fc := join(t, "netem-faulty", "dave", lkclient.Options{Impair: im})
	faulty := runBargeIn(t, fc)
	t.Logf("network faults: %s", how)
	t.Logf("             first audio   barge-in fence   last fenced frame after fence")
	t.Logf("clean        %-13s %-16s %s", clean.FirstAudio.Round(time.Millisecond), clean.Fence.Round(time.Millisecond), clean.LastAfterFence.Round(time.Millisecond))
	t.Logf("faulty       %-13s %-16s %s", faulty.FirstAudio.Round(time.Millisecond), faulty.Fence.Round(time.Millisecond), faulty.LastAfterFence.Round(time.Millisecond))
	fc.Close()
	_ = w.Stop(30 * time.Second)
	recs, err := testenv.ReadTimeline(w.Timeline)
	if err != nil {
		t.Fatal(err)
	}
	if err := testenv.CheckTerminals(recs); err != nil {
		t.Fatal(err)
	}
	commits := 0
	for _, r := range recs {
		if r.Type == "turn_commit" {
			commits++
		}
	}
	if commits < 2 {
		t.Errorf("%d turns committed, want one per room at least", commits)
	}
}
