package authority_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/kernel/eventabi"
	"github.com/rspp/rspp/supervisor/authority"
	"github.com/rspp/rspp/test/etcdtest"
	"github.com/rspp/rspp/test/stats"
)

// Turn-open latency with the lease check, local vs etcd, in one run (the
// local figures are the baseline). Two measures per authority:
//   - first: a new session's first turn: take the session's lease, open
//     the kernel session, speech start -> turn_open (what a caller of a
//     new session waits);
//   - next: a later turn of a session already holding its lease: speech
//     start -> turn_open with the lease checked on the way (Lease.Check,
//     no I/O).
// Each op takes samples so that a p99 means something at -benchtime=1s.

const samples = 200

type clock struct{ start time.Time }

func (c clock) Now() int64 { return int64(time.Since(c.start)) }

func graph() kernel.GraphSpec {
	return kernel.GraphSpec{Nodes: []kernel.NodeSpec{{ID: "n", Kind: "custom", Provider: "p"}},
		Edges: []kernel.EdgeSpec{{From: kernel.Ingress, To: "n"}, {From: "n", To: kernel.Egress}}}
}

func openSession(b *testing.B, id string, l authority.Lease, strict bool) *kernel.Session {
	s, err := kernel.NewSession(kernel.SessionConfig{SessionID: id, Epoch: l.Epoch(), Authority: authority.Kernel{L: l, Strict: strict},
		Graph: graph(), Clock: clock{time.Now()}, VAD: kernel.VADConfig{Disabled: true}})
	if err != nil {
		b.Fatal(err)
	}
	s.Ready()
	return s
}

var speechStart = eventabi.Event{Type: eventabi.TypeSpeechStart, Lane: eventabi.LaneControl}

// turnOpen is speech start until the turn is open (its effects drained).
func turnOpen(b *testing.B, s *kernel.Session) {
	if err := s.Ingest(speechStart); err != nil {
		b.Fatal(err)
	}
	s.Ready()
	if s.ActiveTurn() == "" {
		b.Fatal("no turn opened")
	}
}

func endTurn(s *kernel.Session) {
	_ = s.Cancel("turn", s.ActiveTurn(), "bench")
	_ = s.Ingest(eventabi.Event{Type: eventabi.TypeSpeechEnd, Lane: eventabi.LaneControl})
	s.Ready()
}

func benchAuthorities(b *testing.B, body func(b *testing.B, a authority.Authority, strict bool)) {
	b.Run("local", func(b *testing.B) { body(b, authority.NewLocal(), false) })
	b.Run("etcd", func(b *testing.B) {
		srv := etcdtest.Start(b)
		a, err := authority.NewEtcd(context.Background(), authority.EtcdConfig{Endpoints: []string{srv.Endpoint}, TTL: 5 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		defer a.Close()
		body(b, a, true)
	})
}

func BenchmarkTurnOpenFirstOfSession(b *testing.B) {
	benchAuthorities(b, func(b *testing.B, a authority.Authority, strict bool) {
		var d []time.Duration
		n := 0
		for b.Loop() {
			for range samples {
				n++
				id := fmt.Sprintf("bench-%d", n)
				t0 := time.Now()
				l, err := a.Acquire(context.Background(), id)
				if err != nil {
					b.Fatal(err)
				}
				s := openSession(b, id, l, strict)
				turnOpen(b, s)
				d = append(d, time.Since(t0))
				s.Close("bench")
				l.Release()
			}
		}
		stats.Report(b, d)
	})
}

func BenchmarkTurnOpenWithLeaseHeld(b *testing.B) {
	benchAuthorities(b, func(b *testing.B, a authority.Authority, strict bool) {
		l, err := a.Acquire(context.Background(), "bench-held")
		if err != nil {
			b.Fatal(err)
		}
		defer l.Release()
		s := openSession(b, "bench-held", l, strict)
		var d []time.Duration
		for b.Loop() {
			for range samples {
				t0 := time.Now()
				turnOpen(b, s)
				d = append(d, time.Since(t0))
				endTurn(s)
			}
		}
		stats.Report(b, d)
	})
}
