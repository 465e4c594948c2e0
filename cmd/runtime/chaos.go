package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/rspp/rspp/supervisor"
	"github.com/rspp/rspp/supervisor/config"
	"github.com/rspp/rspp/supervisor/load"
)

// chaosPhrases are what the chaos sessions say (phrases of the example
// grammar, so the example STT recognises them).
var chaosPhrases = []string{"what time is it", "hello there", "tell me a joke"}

func chaosCmd() *cobra.Command {
	var (
		cfgPath, timeline, logLevel, faults string
		tenants                             []string
		duration, every, gap                time.Duration
		sessions                            int
		seed                                uint64
		realtime                            bool
		tf                                  telemetryFlags
	)
	var af authorityFlags // session placement leases (authority.go)
	cmd := &cobra.Command{
		Use:   "chaos",
		Short: "Run concurrent sessions while killing plugin processes; print an invariant report",
		Long: `chaos runs --sessions concurrent sessions of scripted audio (phrases spoken
once by the pipeline's own TTS provider, looped with silence between) while every --kill-every a
random plugin process gets a random fault: SIGKILL, SIGSTOP then resume, or a
hang (stopped for good). At the end it shuts down and prints, from the timeline
records, turns opened/committed/aborted (by reason), turns with other than one
terminal, lost sessions, and plugin processes left behind. It exits 1 unless
the last three are 0.`,
		Example: "  rspp chaos --config examples/voice-agent.yaml --duration 60s --kill-every 2s",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfgPath == "" {
				return usageError{errors.New("--config is required")}
			}
			if duration <= 0 || every <= 0 || sessions < 1 {
				return usageError{errors.New("--duration and --kill-every must be positive, --sessions >= 1")}
			}
			for _, t := range tenants {
				if err := supervisor.CheckTenant(t); err != nil {
					return usageError{fmt.Errorf("--tenant: %w", err)}
				}
			}
			cfg, err := config.Load(cfgPath)
			if err != nil {
				return err
			}
			if err := af.apply(cfg); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			tel, stopTel, err := tf.start(cfg)
			if err != nil {
				return err
			}
			defer stopTel()
			rep, err := load.RunChaos(ctx, cfg, load.ChaosOptions{
				Duration: duration, KillEvery: every, Sessions: sessions, Phrases: chaosPhrases, Gap: gap,
				Realtime: realtime, Seed: seed, Faults: splitList(faults), Timeline: timeline, Tenants: tenants,
				Logger: newLogger(logLevel), Log: os.Stderr, Telemetry: tel,
			})
			if err != nil {
				return err
			}
			rep.Write(cmd.OutOrStdout())
			if !rep.OK() {
				return errors.New("chaos: invariants violated")
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfgPath, "config", "", "runtime config (YAML)")
	f.DurationVar(&duration, "duration", 60*time.Second, "how long to inject faults")
	f.DurationVar(&every, "kill-every", 2*time.Second, "interval between faults")
	f.IntVar(&sessions, "sessions", 4, "concurrent sessions")
	f.StringArrayVar(&tenants, "tenant", nil, "sessions' tenant; repeat for several, sessions take them in turn")
	tf.register(f)
	af.register(f)
	f.DurationVar(&gap, "gap", 1500*time.Millisecond, "silence between utterances")
	f.BoolVar(&realtime, "realtime", true, "feed audio at real time (false: as fast as sessions take it)")
	f.Uint64Var(&seed, "seed", 1, "fault schedule seed")
	f.StringVar(&faults, "faults", "sigkill,sigstop,hang", "faults to pick from")
	f.StringVar(&timeline, "timeline", "", "where to write the timeline (JSON Lines)")
	f.StringVar(&logLevel, "log-level", "error", "log level: trace, debug, info, warn, error")
	return cmd
}

func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}
