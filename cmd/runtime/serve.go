package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/rspp/rspp/supervisor"
	"github.com/rspp/rspp/supervisor/admin"
	"github.com/rspp/rspp/supervisor/app"
	"github.com/rspp/rspp/supervisor/config"
)

func serveCmd() *cobra.Command {
	var (
		cfgPath, timeline, logLevel string
		listen                      string
		inputs, tenants, origins    []string
		sessions                    int
		gap, duration               time.Duration
		realtime                    bool
		tf                          telemetryFlags
		pf                          profileFlags
		stagger                     time.Duration
		playOut                     bool
		lk                          livekitFlags
	)
	var af authorityFlags // session placement leases (authority.go)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run long-lived: many concurrent sessions from WAV files, admin socket, SIGHUP reloads the config",
		Long: `serve runs the runtime until SIGINT/SIGTERM (or --duration): the file transport
replays the input WAVs in --sessions concurrent sessions, each looping its WAV.
With --listen ADDR it serves live sessions instead: a browser page at / and a
WebSocket endpoint at /ws (transports/websocket/PROTOCOL.md), one session per
connection, agent audio played out in real time; talking over the agent
interrupts it.
The admin socket (runtime.admin_socket, default <state_dir>/admin.sock) answers
rspp status and rspp upgrade; SIGHUP re-reads the config and hot-upgrades the
providers whose binary or settings changed.`,
		Example: "  rspp serve --config examples/voice-agent.yaml --input in.wav --sessions 8\n  rspp serve --config examples/voice-agent.yaml --listen 127.0.0.1:8080",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			if cfgPath == "" {
				return usageError{fmt.Errorf("--config is required")}
			}
			if listen != "" && len(inputs) > 0 {
				return usageError{fmt.Errorf("--listen serves live sessions: it takes no --input")}
			}
			if sessions < 1 {
				return usageError{fmt.Errorf("--sessions must be >= 1")}
			}
			for _, t := range tenants {
				if err := supervisor.CheckTenant(t); err != nil {
					return usageError{fmt.Errorf("--tenant: %w", err)}
				}
			}
			cfg, err := loadForRun(cfgPath, inputs...)
			if err != nil {
				return err
			}
			if err := af.apply(cfg); err != nil {
				return err
			}
			if listen == "" && len(inputs) == 0 && lk.url == "" {
				listen = cfg.Transports.WebSocket.Listen
			}
			if listen == "" && len(inputs) == 0 && lk.url == "" {
				return usageError{fmt.Errorf("--input, --listen or transports.websocket.listen in the config is required")}
			}
			tel, stopTel, err := tf.start(cfg)
			if err != nil {
				return err
			}
			defer stopTel()
			var running atomic.Pointer[supervisor.Runtime]
			if err := tf.observeCapacity(&running); err != nil {
				return err
			}
			stopProf, err := pf.start()
			if err != nil {
				return err
			}
			defer stopProf()
			out := cmd.OutOrStdout()
			so := app.ServeOptions{
				Inputs: inputs, Sessions: sessions, Tenants: tenants, Gap: gap, Duration: duration, Realtime: realtime, Timeline: timeline,
				Logger: newLogger(logLevel), Telemetry: tel, StaggerWindow: stagger, PlayOut: playOut,
				Started: func(rt *supervisor.Runtime) { running.Store(rt) },
				Ready:   func(sock string) { fmt.Fprintf(out, "serving %d sessions; admin socket %s\n", sessions, sock) },
			}
			if listen != "" {
				so.Ready = func(sock string) { fmt.Fprintf(out, "admin socket %s\n", sock) }
				lo := app.ListenFromConfig(cfg.Transports.WebSocket)
				lo.Addr = listen
				lo.Listening = func(addr string) {
					fmt.Fprintf(out, "listening on http://%s/ (WebSocket endpoint ws://%s/ws)\n", addr, addr)
				}
				if len(origins) > 0 {
					lo.WebSocket.AllowedOrigins = origins
				}
				if cmd.Flags().Changed("sessions") {
					lo.MaxSessions = sessions
				}
				so.Listen = &lo
			}
			if lk.url != "" {
				if so.LiveKit, err = lk.options(); err != nil {
					return err
				}
				so.Listen = nil
				so.Ready = func(sock string) { fmt.Fprintf(out, "admin socket %s\n", sock) }
				so.LiveKit.Registered = func(id string) { fmt.Fprintf(out, "livekit worker %s registered with %s\n", id, lk.url) }
			}
			term, err := app.Serve(ctx, cfg, so, out)
			if err != nil {
				return interruptedOr(ctx, err, " during start; plugins stopped")
			}
			if ctx.Err() != nil {
				fmt.Fprintln(os.Stderr, "rspp: interrupted; sessions closed, plugins stopped")
			}
			fmt.Fprintf(out, "sessions: %d, turns opened: %d, committed: %d, aborted: %d, wrong terminals: %d\n",
				term.Sessions, term.Opened, term.Committed, term.Aborted, term.WrongCount)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfgPath, "config", "", "runtime config (YAML)")
	f.StringArrayVar(&inputs, "input", nil, "input WAV (16 kHz mono); repeat for several, sessions take them in turn")
	f.IntVar(&sessions, "sessions", 1, "concurrent sessions (with --listen: the most live sessions at once, default 200)")
	f.StringVar(&listen, "listen", "", "serve live sessions: the page at http://ADDR/ and the WebSocket endpoint at /ws (e.g. 127.0.0.1:8080; default transports.websocket.listen of the config)")
	f.StringArrayVar(&origins, "allow-origin", nil, "with --listen: also accept WebSocket connections from pages of this origin host pattern (default: same host only)")
	f.StringArrayVar(&tenants, "tenant", nil, "sessions' tenant; repeat for several, sessions take them in turn (profile tenant providers never share instances across tenants)")
	f.DurationVar(&gap, "gap", 1500*time.Millisecond, "silence between utterances")
	f.DurationVar(&duration, "duration", 0, "stop after this long (0: until SIGINT/SIGTERM)")
	f.BoolVar(&realtime, "realtime", true, "pace input at real time")
	f.StringVar(&timeline, "timeline", "", "where to write the timeline (JSON Lines)")
	f.StringVar(&logLevel, "log-level", "warn", "log level: trace, debug, info, warn, error")
	f.DurationVar(&stagger, "stagger", 0, "spread the sessions' first utterances evenly over this window, as real callers arrive, e.g. 3s (default 0: all start on the same frame, as tests that compare sessions expect)")
	f.BoolVar(&playOut, "play-out", false, "play each session's agent audio out in real time, as a live caller hears it (turns end once their audio has played)")
	tf.register(f)
	af.register(f)
	pf.register(f)
	lk.register(f)
	return cmd
}

// loadForRun checks that the input files exist, then loads the config.
func loadForRun(cfgPath string, inputs ...string) (*config.Config, error) {
	for _, in := range inputs {
		if _, err := os.Stat(in); err != nil {
			return nil, usageError{fmt.Errorf("--input: %w", err)}
		}
	}
	return config.Load(cfgPath)
}

func newLogger(level string) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "rspp", Level: hclog.LevelFromString(level), Output: os.Stderr})
}

// adminFlags find the admin socket: --socket, or the one of --config's
// state dir.
type adminFlags struct{ socket, cfgPath string }

func (a *adminFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&a.socket, "socket", "", "admin socket of the running rspp")
	cmd.Flags().StringVar(&a.cfgPath, "config", "", "config of the running rspp (to find its admin socket)")
}

func (a *adminFlags) path() (string, error) {
	if a.socket != "" {
		return a.socket, nil
	}
	if a.cfgPath == "" {
		return supervisor.AdminSocketPath("", ""), nil
	}
	cfg, err := config.Load(a.cfgPath)
	if err != nil {
		return "", err
	}
	return supervisor.AdminSocketPath(cfg.Runtime.AdminSocket, cfg.Runtime.StateDir), nil
}

func upgradeCmd() *cobra.Command {
	var (
		af               adminFlags
		provider, binary string
	)
	cmd := &cobra.Command{
		Use:   "upgrade",
		Short: "Hot-upgrade a provider of a running rspp to a new binary",
		Long: `upgrade asks a running rspp (over its admin socket) to start the new binary's pool
beside the old one, health-check it, bind it from the next turn boundary on and
drain the old instances. If the new version fails, the old one stays and the
command says why (exit status 1).`,
		Example: "  rspp upgrade --config examples/voice-agent.yaml --provider espeak --binary ./espeak-2",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if provider == "" || binary == "" {
				return usageError{fmt.Errorf("--provider and --binary are required")}
			}
			sock, err := af.path()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			resp, err := admin.Call(ctx, sock, admin.Request{Op: "upgrade", Provider: provider, Binary: binary})
			if err != nil {
				return err
			}
			u := resp.Upgrade
			fmt.Fprintf(cmd.OutOrStdout(), "upgraded %s: %s (pool %s) -> %s (pool %s); old pool drains after its in-flight turns\n",
				u.Provider, u.OldVersion, u.OldKey, u.NewVersion, u.NewKey)
			return nil
		},
	}
	af.add(cmd)
	cmd.Flags().StringVar(&provider, "provider", "", "provider name from the config")
	cmd.Flags().StringVar(&binary, "binary", "", "new plugin binary")
	return cmd
}

func statusCmd() *cobra.Command {
	var af adminFlags
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the pools and plugin processes of a running rspp",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sock, err := af.path()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			resp, err := admin.Call(ctx, sock, admin.Request{Op: "status"})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "rspp pid %d, plugin pids %v\n", resp.Pid, resp.Plugins)
			for _, p := range resp.Pools {
				fmt.Fprintf(out, "pool %s: %s@%s instances %v crashes %v restarts %d %s\n", p.Key, p.Provider, p.Version, p.Instances, p.Crashes, p.Restarts, p.Circuit)
				printPoolLoad(out, p)
			}
			printAdmission(out, resp.Admission)
			return nil
		},
	}
	af.add(cmd)
	return cmd
}
