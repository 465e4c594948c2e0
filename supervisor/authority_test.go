package supervisor

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/supervisor/authority"
)

// fakeLease is a lease a test can lose (a fake: the real one is
// exercised against etcd in supervisor/authority and test/authority).
type fakeLease struct{ lost atomic.Bool }

func (*fakeLease) Session() string { return "fake" }
func (*fakeLease) Epoch() uint64   { return 7 }
func (*fakeLease) Current() uint64 { return 9 }
func (*fakeLease) Release()        {}
func (l *fakeLease) Check() error {
	if l.lost.Load() {
		return authority.ErrExpired
	}
	return nil
}

type recs struct{ got []kernel.TimelineRecord }

func (r *recs) Append(rec kernel.TimelineRecord) { r.got = append(r.got, rec) }

// Live path: audio the kernel handed to the playout while the lease was
// held is still buffered when the lease is lost; from then on the gate
// lets none of it onto the connection, counts it, and the count is
// recorded.
func TestPlayoutSendsNothingOnceTheLeaseIsLost(t *testing.T) {
	r := newPlayoutRig(0)
	lease := &fakeLease{}
	r.gate.SetEpoch(lease.Epoch())
	r.gate.SetAuthority(authority.GateCheck{L: lease})
	for range 20 {
		f := agentFrame("t1")
		f.Epoch = 7
		if err := r.pl.Send(f); err != nil {
			t.Fatal(err)
		}
	}
	r.at(0)
	before := r.conn.frames("t1")
	if before == 0 {
		t.Fatal("nothing played while the lease was held")
	}
	lease.lost.Store(true)
	for k := 1; k <= 20; k++ {
		r.at(time.Duration(k) * FrameDuration)
	}
	if got := r.conn.frames("t1"); got != before {
		t.Fatalf("%d frames reached the connection after the lease was lost", got-before)
	}
	if r.gate.Stale() == 0 {
		t.Fatal("stale frames not counted")
	}
	tl := &recs{}
	recordGateStale(tl, "fake", r.gate)
	if len(tl.got) != 1 || tl.got[0].Reason != kernel.ReasonStaleEpoch || tl.got[0].Attrs["at"] != "transport" {
		t.Fatalf("records %+v", tl.got)
	}
}
