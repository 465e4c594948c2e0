package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/rspp/rspp/supervisor"
	"github.com/rspp/rspp/supervisor/app"
)

func runCmd() *cobra.Command {
	var (
		cfgPath, input, output, timeline, logLevel, tenant string
		realtime                                           bool
		tf                                                 telemetryFlags
	)
	var af authorityFlags // session placement leases (authority.go)
	cmd := &cobra.Command{
		Use:     "run",
		Short:   "Run one session from a WAV file through the configured pipeline",
		Example: "  rspp run --config examples/voice-agent.yaml --input in.wav --output out.wav --timeline timeline.jsonl",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// First thing: a SIGTERM at any moment from here on ends the
			// run cleanly (exit 0, "interrupted"), start included.
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			for flag, v := range map[string]string{"--config": cfgPath, "--input": input, "--output": output} {
				if v == "" {
					return usageError{fmt.Errorf("%s is required", flag)}
				}
			}
			if err := supervisor.CheckTenant(tenant); err != nil {
				return usageError{fmt.Errorf("--tenant: %w", err)}
			}
			cfg, err := loadForRun(cfgPath, input)
			if err != nil {
				return err
			}
			if err := af.apply(cfg); err != nil {
				return err
			}
			tel, stopTel, err := tf.start(cfg)
			if err != nil {
				return err
			}
			defer stopTel()
			rt, err := supervisor.Start(ctx, cfg, supervisor.Options{Logger: newLogger(logLevel), Timeline: tel})
			if err != nil {
				return interruptedOr(ctx, err, " during start; plugins stopped")
			}
			defer rt.Close()
			sum, err := app.RunFile(ctx, rt, app.FileRun{Input: input, Output: output, Timeline: timeline, Realtime: realtime, TenantID: tenant})
			printSummary(cmd, sum)
			return interruptedOr(ctx, err, "; session closed, plugins stopped")
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfgPath, "config", "", "runtime config (YAML)")
	f.StringVar(&input, "input", "", "input WAV, 16 kHz mono s16le")
	f.StringVar(&output, "output", "", "where to write the agent's audio (WAV)")
	f.StringVar(&timeline, "timeline", "", "where to write the timeline (JSON Lines)")
	f.BoolVar(&realtime, "realtime", false, "pace input at real time, like a microphone")
	f.StringVar(&tenant, "tenant", "", "the session's tenant: profile tenant providers serve it from that tenant's own instances")
	f.StringVar(&logLevel, "log-level", "warn", "log level: trace, debug, info, warn, error")
	tf.register(f)
	af.register(f)
	return cmd
}

func printSummary(cmd *cobra.Command, s app.Summary) {
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "recognised: %s\n", strings.Join(s.Transcripts, " | "))
	fmt.Fprintf(out, "reply:      %s\n", strings.Join(s.Replies, " | "))
	fmt.Fprintf(out, "output:     %s (%d frames, %.2f s)\n", s.Output, s.OutputFrames, float64(s.OutputFrames)*0.02)
	if s.Timeline != "" {
		fmt.Fprintf(out, "timeline:   %s\n", s.Timeline)
	}
	fmt.Fprintf(out, "summary:    %s\n", s.Line())
}

// interruptedOr turns an error that came of a SIGINT/SIGTERM into a clean
// exit: the runtime was asked to stop and stopped; it says so on stderr.
// Other errors (and a nil one) pass through.
func interruptedOr(ctx context.Context, err error, what string) error {
	if err != nil && ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "rspp: interrupted"+what)
		return nil
	}
	return err
}
