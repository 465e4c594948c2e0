package app

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rspp/rspp/supervisor"
	"github.com/rspp/rspp/supervisor/load"
	"github.com/rspp/rspp/supervisor/session"
	"github.com/rspp/rspp/transports/livekit"
)

// DefaultLiveKitDrain bounds how long a stopping LiveKit worker waits for
// its rooms to end before it closes their sessions.
const DefaultLiveKitDrain = 60 * time.Second

// LiveKitOptions serve rspp as a LiveKit agent worker (`rspp serve
// --livekit-url`).
type LiveKitOptions struct {
	Agent livekit.Options
	// Drain bounds the wait for live rooms once ctx ends (SIGTERM/SIGINT):
	// the worker takes no more jobs and its sessions finish
	// (DefaultLiveKitDrain; negative: do not wait).
	Drain time.Duration
	// PlayoutFrames bounds each session's buffered agent audio.
	PlayoutFrames int
	// Registered, if set, is called with the worker id once registered.
	Registered func(workerID string)
}

// serveLiveKit registers with the LiveKit server and serves every
// participant session of the rooms it is dispatched to, paced by one
// pacer, until ctx ends; then it drains: no new jobs, live rooms run to
// their end (up to o.Drain), then the rest is closed.
func serveLiveKit(ctx context.Context, rt *supervisor.Runtime, o LiveKitOptions, tl session.Timeline, out io.Writer) (load.Terminals, error) {
	var active atomic.Int64
	ao := o.Agent
	if ao.MaxSessions <= 0 {
		ao.MaxSessions = livekit.DefaultMaxSessions
	}
	limit := ao.MaxSessions
	if ao.Load == nil {
		// The runtime's own admission figures: this worker's sessions of
		// the most it takes, or the runtime's admitted sessions of its
		// admission limit (the config's admission.max_sessions), whichever is
		// fuller.
		ao.Load = func() float32 {
			l := float32(active.Load()) / float32(limit)
			if st := rt.Admission(); st.MaxSessions > 0 {
				l = max(l, float32(st.Sessions)/float32(st.MaxSessions))
			}
			return l
		}
	}
	ao.Log = func(msg string, kv ...any) { rt.Logger().Info(msg, kv...) }
	agent, err := livekit.NewAgent(ctx, ao)
	if err != nil {
		return load.Terminals{}, fmt.Errorf("serve --livekit-url: %w", err)
	}
	if o.Registered != nil {
		o.Registered(agent.WorkerID())
	}
	pacer := supervisor.NewPacer()
	tally := &liveTally{open: map[string]*tallyTurn{}}
	var next session.Timeline = tally
	if tl != nil {
		next = session.Tee{tally, tl}
	}
	// Sessions outlive ctx by the drain.
	sctx, scancel := context.WithCancel(context.WithoutCancel(ctx))
	defer scancel()
	var wg sync.WaitGroup
	for {
		c, err := agent.Accept(ctx)
		if err != nil {
			break
		}
		active.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer active.Add(-1)
			lc := c.(*livekit.Conn)
			res, err := rt.ServeConn(sctx, c, supervisor.ConnOptions{Pacer: pacer, PlayoutFrames: o.PlayoutFrames, Timeline: next})
			if err != nil {
				rt.Logger().Warn("livekit session", "session", res.SessionID, "error", err)
				return
			}
			st := lc.Stats()
			rt.Logger().Info("livekit session closed", "session", res.SessionID, "room", lc.Room(), "participant", lc.Identity(),
				"reason", res.Reason, "connection", fmt.Sprint(res.ConnErr), "frames_in", st.FramesIn, "frames_out", st.FramesOut,
				"lost_packets", st.LostPackets, "late_packets", st.LatePackets, "fenced_out", res.Playout.FencedOut)
		}()
	}
	agent.Drain()
	if o.Drain >= 0 {
		d := o.Drain
		if d == 0 {
			d = DefaultLiveKitDrain
		}
		fmt.Fprintf(out, "livekit: draining (no new jobs; up to %s for %d live sessions)\n", d, active.Load())
		select {
		case <-agent.Idle():
		case <-time.After(d):
		}
	}
	scancel()
	_ = agent.Close()
	wg.Wait()
	pacer.Close()
	st := agent.Stats()
	fmt.Fprintf(out, "livekit: jobs offered %d, accepted %d, rejected %d, ended %d; sessions %d\n",
		st.Offers, st.Accepted, st.Rejected, st.JobsEnded, st.Sessions)
	return tally.terminals(), nil
}
