package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/rspp/rspp/test/lkenv"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"
)

// Main is the driver: it parses args (without the program name), measures
// the frame round trips, folds in the Go benchmark output and writes the
// results. The plugin processes are this same binary: ServePluginIfAsked
// must have run first.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if child, err := RunLiveKitChildIfAsked(ctx, stderr); child {
		return err
	}
	fl := flag.NewFlagSet("rspp-bench", flag.ContinueOnError)
	fl.SetOutput(stderr)
	out := fl.String("out", "bench/results.json", "where to write the results")
	gobench := fl.String("gobench", "", "`file` holding `go test -bench` output to fold in (optional)")
	var cfg RoundTripConfig
	fl.IntVar(&cfg.Samples, "n", 5000, "measured round trips per path")
	fl.IntVar(&cfg.Warmup, "warmup", 200, "unmeasured round trips per path first")
	fl.IntVar(&cfg.Rounds, "rounds", 10, "interleaved rounds the samples are split into")
	fl.IntVar(&cfg.FrameBytes, "frame", 640, "frame size in bytes")
	fl.DurationVar(&cfg.Timeout, "timeout", 5*time.Minute, "limit for the round-trip measurement")
	nodejs := fl.String("nodejs-node", "sdk/node/examples/echo.js", "echo node on the Node.js SDK measured beside the Go node (\"\": skip)")
	python := fl.String("python-node", "sdk/python/examples/echo.py", "echo node on the Python SDK measured beside the Go node (\"\": skip)")
	floodPhase := fl.Duration("flood", 5*time.Second, "length of each phase of the supervisor-RSS-under-flood measurement (0: skip)")
	live := LiveConfig{Phrase: "what time is it", TempDir: os.TempDir()}
	fl.StringVar(&live.BinDir, "live-bin", "bin", "`dir` with rspp, providers/ and bench/energystt for the live-path measurement")
	fl.StringVar(&live.Replies, "live-replies", "examples/replies.yaml", "the rules provider's replies for the live-path measurement")
	fl.IntVar(&live.Clients, "live-clients", 20, "WebSocket clients of the live-path measurement's loaded phase")
	fl.DurationVar(&live.Phase, "live-phase", 25*time.Second, "length of each phase of the live-path measurement (0: skip)")
	fl.IntVar(&live.BargeIns, "live-barge-in-every", 2, "every Nth utterance of the live-path measurement barges in")
	capa := CapacityConfig{TempDir: os.TempDir(), Log: stderr}
	ladder := fl.String("capacity-ladder", "", "comma-separated session counts of the capacity ladder, smallest first (its p99 is the baseline; empty: skip)")
	fl.DurationVar(&capa.Phase, "capacity-phase", 40*time.Second, "how long each rung of the capacity ladder feeds")
	fl.IntVar(&capa.Runs, "capacity-runs", 3, "runs of each rung of the capacity ladder; a rung reports its run of median p99")
	fl.StringVar(&capa.Instances, "capacity-instances", "1", "pool size of each light provider: a number or {min: 1, max: 4}")
	fl.DurationVar(&capa.Soak, "soak", 0, "also run a soak of -soak-sessions light sessions this long and print its RSS curve (0: skip)")
	fl.IntVar(&capa.SoakSessions, "soak-sessions", 200, "sessions of the soak")
	ex := ExampleConfig{TempDir: os.TempDir(), Log: stderr, HASessions: 20, HAKillAt: 30 * time.Second}
	exLadder := fl.String("example-ladder", "", "comma-separated session counts of the example pipeline ladder (empty: skip)")
	fl.DurationVar(&ex.Phase, "example-phase", 40*time.Second, "how long each rung of the example ladder feeds")
	fl.StringVar(&ex.Instances, "example-instances", "{min: 1, max: 4}", "pool size of the example pipeline's providers")
	fl.StringVar(&ex.ExamplesDir, "examples", "examples", "`dir` of the example configs")
	fl.DurationVar(&ex.HAPhase, "ha-phase", 0, "run examples/voice-agent-ha.yaml this long with one STT instance SIGKILLed at -ha-kill-at (0: skip)")
	fl.DurationVar(&ex.HAKillAt, "ha-kill-at", 30*time.Second, "when the HA run kills an STT instance")
	fl.IntVar(&ex.HASessions, "ha-sessions", 20, "sessions of the HA run")
	lkMarkers := fl.Int("livekit-markers", 0, "one-way samples per transport of the LiveKit-path measurement (0: skip it; make bench: 100)")
	lkTurns := fl.Int("livekit-turns", 5, "first-audio samples of the LiveKit-path measurement")
	lkServer := fl.String("livekit-server", "", "the pinned livekit-server binary (default: GOPATH/bin/livekit-server-v"+lkenv.ServerVersion+")")
	if err := fl.Parse(args); err != nil {
		return err
	}
	var err error
	if ex.Ladder, err = parseLadder("-example-ladder", *exLadder); err != nil {
		return err
	}
	if capa.Ladder, err = parseLadder("-capacity-ladder", *ladder); err != nil {
		return err
	}
	if fl.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fl.Args())
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("cannot find own binary to re-execute as plugin: %w", err)
	}
	cfg.Self = self

	res := &Results{GeneratedAt: time.Now().UTC(), Machine: ThisMachine(), GoBenchmarks: map[string]*GoPackage{}}
	if *gobench != "" {
		// Parse first: a broken file should not cost a whole measurement.
		pkgs, note, err := readGoBench(*gobench)
		if err != nil {
			return err
		}
		if note != "" {
			res.Notes = append(res.Notes, note)
		}
		if pkgs != nil {
			res.GoBenchmarks = pkgs
		}
	}
	var note string
	if cfg.NodeJSNode, note = sdkNode(*nodejs, "node", "sdk/node/dist/src/index.js"); note != "" {
		res.Notes = append(res.Notes, "Node.js SDK round trip not measured: "+note)
	}
	if cfg.PythonNode, note = sdkNode(*python, "/usr/bin/python3", ""); note != "" {
		res.Notes = append(res.Notes, "Python SDK round trip not measured: "+note)
	}
	if res.FrameRoundTrip, err = MeasureRoundTrips(ctx, cfg); err != nil {
		return fmt.Errorf("frame round trip: %w", err)
	}
	if *floodPhase > 0 {
		if res.FloodRSS, err = MeasureFloodRSS(ctx, self, os.TempDir(), *floodPhase); err != nil {
			return fmt.Errorf("supervisor RSS under flood: %w", err)
		}
	}
	// A failed live measurement still gets the other results written; the
	// driver then exits non-zero.
	var liveErr error
	if live.Phase > 0 {
		if missing := live.missing(); missing != "" {
			res.Notes = append(res.Notes, "live path not measured: "+missing)
		} else if res.Live, liveErr = MeasureLive(ctx, live); liveErr != nil {
			liveErr = fmt.Errorf("live path: %w", liveErr)
			res.Notes = append(res.Notes, liveErr.Error())
		} else {
			res.Notes = append(res.Notes, res.Live.Notes...)
		}
	}
	if len(capa.Ladder) > 0 || capa.Soak > 0 {
		capa.BinDir, capa.Replies = live.BinDir, live.Replies
		if missing := capa.missing(); missing != "" {
			res.Notes = append(res.Notes, "capacity not measured: "+missing)
		} else if res.Capacity, err = MeasureCapacity(ctx, capa); err != nil {
			res.Notes = append(res.Notes, "capacity: "+err.Error())
		}
	}
	if len(ex.Ladder) > 0 || ex.HAPhase > 0 {
		ex.BinDir = live.BinDir
		if res.Example, err = MeasureExample(ctx, ex); err != nil {
			res.Notes = append(res.Notes, "example pipeline: "+err.Error())
		}
	}
	if *lkMarkers > 0 {
		lkc := LiveKitConfig{BinDir: live.BinDir, Replies: live.Replies, Phrase: live.Phrase, Markers: *lkMarkers, Turns: *lkTurns,
			Server: *lkServer, TempDir: os.TempDir()}
		b, note, err := MeasureLiveKit(ctx, lkc)
		switch {
		case err != nil:
			err = fmt.Errorf("livekit path: %w", err)
			res.Notes = append(res.Notes, err.Error())
			if liveErr == nil {
				liveErr = err
			}
		case note != "":
			res.Notes = append(res.Notes, note)
		default:
			if res.Live != nil && len(res.Live.Phases) > 0 && len(b.Paths) > 0 {
				b.Ratios["first_audio_client livekit/websocket (1 client)"] = RatioOf(b.Paths[0].FirstAudio, res.Live.Phases[0].FirstAudioClient)
			}
			res.LiveKit = b
		}
	}
	if err := WriteJSON(*out, res); err != nil {
		return err
	}
	PrintSummary(stdout, res)
	fmt.Fprintf(stdout, "\nwrote %s\n", *out)
	return liveErr
}

// readGoBench parses the file; a missing file is a note, not an error (the
// Go benchmarks may simply not have been run).
func readGoBench(path string) (map[string]*GoPackage, string, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Sprintf("no Go benchmark output at %s", path), nil
	}
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	pkgs, err := ParseGoBench(f)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	if len(pkgs) == 0 {
		return pkgs, fmt.Sprintf("no Go benchmark results in %s", path), nil
	}
	return pkgs, "", nil
}

// parseLadder reads a comma-separated list of session counts.
func parseLadder(flag, s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%s: bad session count %q", flag, f)
		}
		out = append(out, n)
	}
	return out, nil
}
