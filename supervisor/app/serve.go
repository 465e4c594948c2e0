package app

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rspp/rspp/supervisor"
	"github.com/rspp/rspp/supervisor/admin"
	"github.com/rspp/rspp/supervisor/config"
	"github.com/rspp/rspp/supervisor/load"
	"github.com/rspp/rspp/supervisor/session"
	"github.com/rspp/rspp/transports/file"
)

// ServeOptions run the runtime as a long-lived service: the admin socket
// answers status/upgrade/reload, SIGHUP reloads the config, and the file
// transport replays the input WAVs in Sessions concurrent sessions, each
// looping its WAV with Gap of silence between, until ctx ends or Duration
// passed (0: until ctx ends).
type ServeOptions struct {
	Inputs   []string
	Sessions int
	// Tenants, if set, are the sessions' tenants, taken in turn.
	Tenants  []string
	Gap      time.Duration
	Duration time.Duration
	Realtime bool
	Timeline string // JSON Lines of every session's records
	Logger   hclog.Logger
	// Telemetry, if set, also receives every record (see Options.Timeline).
	Telemetry session.Timeline
	// Ready, if set, is called with the admin socket path once serving.
	Ready func(adminSocket string)
	// Listen, if set, serves the live transports instead of replaying
	// Inputs: the page and the WebSocket endpoint, a session per
	// connection, agent audio played out in real time.
	Listen *ListenOptions
	// StaggerWindow spreads the sessions' starts evenly over this window
	// (session i starts i*StaggerWindow/Sessions late), so that they do
	// not all speak and decode on the same 20 ms frame; 0: all at once.
	StaggerWindow time.Duration
	// PlayOut plays each session's agent audio out in real time, as a
	// live transport does (turns end once their audio has played).
	PlayOut bool
	// Started, if set, is called with the runtime once it is up (metrics
	// read its capacity from then on) and with nil when it stops.
	Started func(rt *supervisor.Runtime)
	// LiveKit, if set, serves rooms of a LiveKit server as its agent
	// worker instead (see LiveKitOptions).
	LiveKit *LiveKitOptions
}

// Serve starts a runtime from cfg and serves until ctx ends. It returns
// what the sessions' timeline says.
func Serve(ctx context.Context, cfg *config.Config, o ServeOptions, out io.Writer) (load.Terminals, error) {
	clips := make([][]byte, 0, len(o.Inputs))
	for _, t := range o.Tenants {
		if err := supervisor.CheckTenant(t); err != nil {
			return load.Terminals{}, fmt.Errorf("serve: %w", err)
		}
	}
	for _, in := range o.Inputs {
		pcm, err := file.Load(in)
		if err != nil {
			return load.Terminals{}, err
		}
		clips = append(clips, pcm)
	}
	if len(clips) == 0 && o.Listen == nil && o.LiveKit == nil {
		return load.Terminals{}, fmt.Errorf("serve: no input WAV")
	}
	rt, err := supervisor.Start(ctx, cfg, supervisor.Options{Logger: o.Logger, Timeline: o.Telemetry})
	if err != nil {
		return load.Terminals{}, err
	}
	defer rt.Close()
	if o.Started != nil {
		o.Started(rt)
		defer o.Started(nil)
	}
	srv, err := admin.Serve(rt, supervisor.AdminSocketPath(cfg.Runtime.AdminSocket, rt.StateDir().Root))
	if err != nil {
		return load.Terminals{}, err
	}
	defer srv.Close()

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	hupDone := make(chan struct{})
	hctx, hcancel := context.WithCancel(ctx)
	defer func() { hcancel(); <-hupDone }()
	go func() {
		defer close(hupDone)
		for {
			select {
			case <-hctx.Done():
				return
			case <-hup:
				res, err := rt.Reload(hctx)
				for _, r := range res {
					fmt.Fprintf(out, "reload: %s %s -> %s\n", r.Provider, r.OldVersion, r.NewVersion)
				}
				if err != nil {
					fmt.Fprintf(out, "reload: %v\n", err)
				}
			}
		}
	}()

	if o.Listen != nil || o.LiveKit != nil {
		var tl session.Timeline
		if o.Timeline != "" {
			jl, err := rt.CreateTimeline(o.Timeline)
			if err != nil {
				return load.Terminals{}, err
			}
			defer jl.Close()
			tl = jl
		}
		if o.Ready != nil {
			o.Ready(srv.Path())
		}
		lctx := ctx
		if o.Duration > 0 {
			var cancel context.CancelFunc
			lctx, cancel = context.WithTimeout(ctx, o.Duration)
			defer cancel()
		}
		if o.LiveKit != nil {
			return serveLiveKit(lctx, rt, *o.LiveKit, tl, out)
		}
		return serveLive(lctx, rt, *o.Listen, tl, out)
	}
	// Only bounded counters stay in memory: records go to the timeline
	// file (if any) and are gone.
	col := load.NewTerminalCounter()
	var tl session.Timeline = col
	if o.Timeline != "" {
		jl, err := rt.CreateTimeline(o.Timeline, col)
		if err != nil {
			return load.Terminals{}, err
		}
		defer jl.Close()
		tl = jl
	}
	if o.Ready != nil {
		o.Ready(srv.Path())
	}
	stop := make(chan struct{})
	if o.Duration > 0 {
		t := time.AfterFunc(o.Duration, func() { close(stop) })
		defer t.Stop()
	}
	var stagger time.Duration
	if o.StaggerWindow > 0 && o.Sessions > 1 {
		stagger = o.StaggerWindow / time.Duration(o.Sessions)
	}
	var pacer *supervisor.Pacer
	if o.PlayOut {
		pacer = supervisor.NewPacer()
		defer pacer.Close()
	}
	stats := &load.Stats{}
	res := load.Run(ctx, rt, load.Options{Sessions: o.Sessions, Utterances: clips, Gap: o.Gap, Realtime: o.Realtime, Stagger: stagger,
		Stats: stats, Pacer: pacer,
		Tenants: o.Tenants, Timeline: tl, Stop: stop, Prefix: "serve"})
	term := col.Terminals(true)
	for _, l := range res.Lost {
		fmt.Fprintf(out, "lost: %s\n", l)
	}
	if o.Realtime {
		stats.WriteSummary(out, rt.Admission())
	}
	return term, nil
}
