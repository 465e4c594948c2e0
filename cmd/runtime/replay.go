package main

import (
	"context"
	"errors"
	"fmt"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/rspp/rspp/replay"
	"github.com/rspp/rspp/supervisor/config"
	"github.com/rspp/rspp/supervisor/session"
)

func replayCmd() *cobra.Command {
	var (
		mode, cfgPath, logLevel, out string
		check                        bool
	)
	cmd := &cobra.Command{
		Use:   "replay TIMELINE",
		Short: "Check, resimulate or play back a recorded timeline",
		Long: `replay works on a timeline written by run, serve or chaos (--timeline).

  --check             OR-02 completeness: every accepted turn has its
                      replay-critical evidence; exits 1 naming the turns
                      that do not.
  --mode resimulate   rebuilds each session's kernel from its recorded inputs
                      and compares the lifecycle and decision records it
                      emits with the recorded ones, byte for byte; prints a
                      timeline hash per session; exits 1 on any difference.
  --mode playback     runs the recorded traffic through the real runner with
                      each provider replaced by its recorded outputs (no
                      plugin process) under --config; a provider whose config
                      changed since the recording (e.g. another reply table)
                      runs for real. Prints the turns whose decisions or
                      outputs differ from the recording.`,
		Example: `  rspp chaos --config examples/voice-agent-ha.yaml --duration 60s --kill-every 2s --timeline chaos.jsonl
  rspp replay --check chaos.jsonl
  rspp replay --mode resimulate chaos.jsonl
  rspp replay --mode playback --config examples/voice-agent.yaml run.jsonl`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !check && mode == "" {
				return usageError{errors.New("give --check and/or --mode resimulate|playback")}
			}
			switch mode {
			case "", "resimulate", "playback":
			default:
				return usageError{fmt.Errorf("--mode %q: want resimulate or playback", mode)}
			}
			if mode == "playback" && cfgPath == "" {
				return usageError{errors.New("--mode playback needs --config")}
			}
			tl, err := replay.Load(args[0])
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			failed := false
			if check {
				rep := replay.Check(tl)
				rep.Write(w)
				failed = !rep.OK()
			}
			switch mode {
			case "resimulate":
				if !replay.WriteResim(w, replay.Resimulate(tl)) {
					failed = true
				}
			case "playback":
				cfg, err := config.Load(cfgPath)
				if err != nil {
					return err
				}
				ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
				defer stop()
				po := replay.PlaybackOptions{Logger: newLogger(logLevel)}
				if out != "" {
					jl, err := session.CreateJSONL(out)
					if err != nil {
						return err
					}
					defer jl.Close()
					po.Timeline = jl
				}
				rep, err := replay.Playback(ctx, tl, cfg, po)
				if err != nil {
					return err
				}
				rep.Write(w)
			}
			if failed {
				return errors.New("replay: check failed")
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&check, "check", false, "verify OR-02 evidence of every accepted turn")
	f.StringVar(&mode, "mode", "", "resimulate or playback")
	f.StringVar(&cfgPath, "config", "", "runtime config to play back against (playback)")
	f.StringVar(&out, "timeline", "", "playback: where to write the played sessions' timeline (JSON Lines)")
	f.StringVar(&logLevel, "log-level", "error", "log level: trace, debug, info, warn, error")
	return cmd
}
