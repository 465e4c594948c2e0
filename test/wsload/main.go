package wsload

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// Main is rspp-wsload: it parses args (without the program name), runs the
// load, prints the report and writes it as JSON if --report is given. It
// returns an error if a check of Report.Check fails.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("rspp-wsload", flag.ContinueOnError)
	fl.SetOutput(stderr)
	var inputs stringList
	cfg := Config{}
	fl.StringVar(&cfg.URL, "url", "ws://127.0.0.1:8080/ws", "WebSocket endpoint of rspp serve --listen")
	fl.IntVar(&cfg.Clients, "clients", 1, "concurrent clients (one session each)")
	fl.DurationVar(&cfg.Duration, "duration", 60*time.Second, "how long each client speaks")
	fl.Var(&inputs, "input", "utterance `WAV` (16 kHz mono s16le); repeat for several, clients take them in turn")
	fl.DurationVar(&cfg.Gap, "gap", DefaultGap, "silence between the end of the agent's reply and the next utterance")
	fl.IntVar(&cfg.BargeInEvery, "barge-in-every", 3, "every Nth utterance is spoken over the agent's reply (0: never)")
	fl.DurationVar(&cfg.BargeInAfter, "barge-in-after", DefaultBargeInAfter, "how far into the reply's audio a barge-in starts")
	fl.DurationVar(&cfg.ReplyTimeout, "reply-timeout", DefaultReplyTimeout, "how long to wait for a reply before speaking again")
	fl.DurationVar(&cfg.Ramp, "ramp", time.Second, "spread the clients' starts over this long")
	fl.StringVar(&cfg.Tenant, "tenant", "", "tenant sent in start")
	voiced := fl.Float64("voiced-db", DefaultVoicedDB, "frame level (dBFS) at which an utterance's speech starts and ends")
	report := fl.String("report", "", "write the report as JSON to this `file`")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fl.Args())
	}
	if len(inputs) == 0 {
		return errors.New("--input is required")
	}
	if cfg.Clients < 1 {
		return errors.New("--clients must be >= 1")
	}
	for _, in := range inputs {
		u, err := LoadUtterance(in, *voiced)
		if err != nil {
			return err
		}
		cfg.Utterances = append(cfg.Utterances, u)
	}
	rep, _ := Run(ctx, cfg)
	rep.Print(stdout)
	if *report != "" {
		if err := rep.WriteFile(*report); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s\n", *report)
	}
	return rep.Check()
}

// ErrCheck is a run that broke an invariant of the live path.
var ErrCheck = errors.New("load run failed its checks")

// Check returns an ErrCheck naming every invariant the run broke: a session
// lost, a turn without exactly one terminal (or open), audio of a fenced
// turn heard after its fence, audio outside an audio_start run, a protocol
// error. Figures (latencies) are not judged here.
func (r *Report) Check() error {
	var bad []string
	if r.Lost > 0 {
		bad = append(bad, fmt.Sprintf("%d of %d sessions lost", r.Lost, r.Sessions))
	}
	if n := len(r.WrongTerminals); n > 0 {
		bad = append(bad, fmt.Sprintf("%d turns without exactly one terminal", n))
	}
	if n := len(r.WrongOpens); n > 0 {
		bad = append(bad, fmt.Sprintf("%d turns without exactly one open", n))
	}
	if r.FramesAfterFence > 0 {
		bad = append(bad, fmt.Sprintf("%d frames of fenced turns after their fence", r.FramesAfterFence))
	}
	if r.UnattributedFrames > 0 {
		bad = append(bad, fmt.Sprintf("%d frames outside an audio_start run", r.UnattributedFrames))
	}
	if n := len(r.ProtocolErrors); n > 0 {
		bad = append(bad, fmt.Sprintf("%d protocol errors", n))
	}
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrCheck, strings.Join(bad, "; "))
}
