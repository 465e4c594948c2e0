// Command rspp-node is the node author's tool: scaffold a node project
// (new), run conformance checks on a node binary (check) and run one
// invocation on a node binary (run). This main only parses flags and calls
// into externalnode/scaffold and externalnode/conformance.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/rspp/rspp/externalnode/conformance"
	"github.com/rspp/rspp/externalnode/scaffold"
	"github.com/rspp/rspp/kernel/eventabi"
	"github.com/rspp/rspp/transports/wav"
)

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1 // a check failed, or the node failed
	exitUsage = 2 // bad flags or arguments: nothing was run
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := execute(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// usageError marks bad flags or arguments.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// checkFailed says conformance found problems (the report says which).
var checkFailed = errors.New("conformance checks failed")

// execute runs the command line and returns the exit code.
func execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := &cobra.Command{
		Use:           "rspp-node",
		Short:         "Scaffold, conformance-check and run RSPP node binaries",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newCmd(stdout), checkCmd(stdout), runCmd(stdout, stderr))
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, checkFailed):
		return exitFail
	}
	fmt.Fprintln(stderr, "rspp-node:", err)
	var ue usageError
	var ne *scaffold.NameError
	var ke *scaffold.KindError
	var le *scaffold.LangError
	var se *scaffold.SDKError
	if errors.As(err, &ue) || errors.As(err, &ne) || errors.As(err, &ke) || errors.As(err, &le) || errors.As(err, &se) || isCobraUsage(err) {
		return exitUsage
	}
	return exitFail
}

// isCobraUsage spots cobra's own argument errors (unknown command, wrong
// number of args), which it does not type.
func isCobraUsage(err error) bool {
	var ae argsError
	return errors.As(err, &ae) || strings.HasPrefix(err.Error(), "unknown command")
}

// argsError wraps cobra's positional-argument validation.
type argsError struct{ error }

func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(cmd, args); err != nil {
			return argsError{fmt.Errorf("%w\nusage: %s", err, cmd.UseLine())}
		}
		return nil
	}
}

func newCmd(stdout io.Writer) *cobra.Command {
	var opts scaffold.Options
	cmd := &cobra.Command{
		Use:   "new NAME [--lang go|node|python] [--dir DIR] [--kind custom|stt|llm|tts] [--sdk PATH]",
		Short: "Scaffold a node project that builds and tests offline against an RSPP checkout",
		Args:  exactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			opts.Name = args[0]
			exe, _ := os.Executable()
			if opts.SDK == "" {
				opts.SDK = scaffold.FindSDK(exe)
			}
			opts.Tool = "rspp-node"
			if exe != "" {
				opts.Tool = exe // rspp-node need not be on PATH
			}
			written, err := scaffold.Generate(opts)
			for _, p := range written {
				fmt.Fprintln(stdout, "created", p)
			}
			if err != nil {
				return err
			}
			dir := filepath.Dir(written[0])
			switch opts.Lang {
			case "node":
				fmt.Fprintf(stdout, "next: cd %s && npm install --offline && npm test && %s check ./main.js\n", dir, opts.Tool)
			case "python":
				fmt.Fprintf(stdout, "next: cd %s && /usr/bin/python3 -m unittest && %s check ./main.py\n", dir, opts.Tool)
			default:
				fmt.Fprintf(stdout, "next: cd %s && go test ./... && go build -o %s . && %s check ./%s\n", dir, opts.Name, opts.Tool, opts.Name)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&opts.Dir, "dir", "", "directory to create the project in (default ./NAME)")
	cmd.Flags().StringVar(&opts.Kind, "kind", "custom", "node kind: custom, stt, llm or tts (node and python: custom)")
	cmd.Flags().StringVar(&opts.Lang, "lang", "go", "language: go, node or python")
	cmd.Flags().StringVar(&opts.SDK, "sdk", "", "root of the RSPP checkout to build against (default: the one this rspp-node was built in)")
	return cmd
}

// nodeFlags are the flags check and run share.
type nodeFlags struct {
	config    string
	configDir string
	timeout   time.Duration
}

func (f *nodeFlags) register(cmd *cobra.Command, timeout time.Duration) {
	cmd.Flags().StringVar(&f.config, "config", "", "JSON file with the node's configuration block")
	cmd.Flags().StringVar(&f.configDir, "config-dir", "", "directory relative config paths resolve against (default: the config file's)")
	cmd.Flags().DurationVar(&f.timeout, "timeout", timeout, "handshake and per-invocation timeout")
}

// load reads the config file, if any, and picks the config dir.
func (f *nodeFlags) load() ([]byte, string, error) {
	dir := f.configDir
	if f.config == "" {
		return nil, dir, nil
	}
	raw, err := os.ReadFile(f.config)
	if err != nil {
		return nil, "", usageError{fmt.Errorf("--config: %w", err)}
	}
	if dir == "" {
		if dir, err = filepath.Abs(filepath.Dir(f.config)); err != nil {
			return nil, "", err
		}
	}
	return raw, dir, nil
}

// resolve makes the node path absolute (so that a bare name is never
// looked up in PATH) and loads the config.
func (f *nodeFlags) resolve(binary string) (bin string, raw []byte, dir string, err error) {
	if bin, err = filepath.Abs(binary); err != nil {
		return "", nil, "", err
	}
	if _, err := os.Stat(bin); err != nil {
		return "", nil, "", usageError{fmt.Errorf("node binary: %w", err)}
	}
	raw, dir, err = f.load()
	return bin, raw, dir, err
}

func checkCmd(stdout io.Writer) *cobra.Command {
	var (
		nf      nodeFlags
		jsonOut bool
		unknown string
		speaker string
	)
	cmd := &cobra.Command{
		Use:   "check BINARY [--config cfg.json] [--config-dir DIR] [--timeout 10s] [--json] [--unknown-events POLICY]",
		Short: "Run the runtime's rules and protocol checks on a node binary (exit 0 only if all pass)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			bin, raw, dir, err := nf.resolve(args[0])
			if err != nil {
				return err
			}
			var speech conformance.SpeechFunc // nil: an stt node gets silence only
			if speaker != "" {
				speech = conformance.PluginSpeech(speaker, "", nf.timeout)
			}
			rep := conformance.Run(cmd.Context(), conformance.Options{
				Binary: bin, Config: raw, ConfigDir: dir, Timeout: nf.timeout, Speech: speech, UnknownEvents: unknown,
			})
			if jsonOut {
				err = rep.WriteJSON(stdout)
			} else {
				err = rep.WriteText(stdout)
			}
			if err != nil {
				return err
			}
			if !rep.OK() {
				return checkFailed
			}
			return nil
		},
	}
	nf.register(cmd, 10*time.Second)
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print the report as JSON")
	cmd.Flags().StringVar(&speaker, "speaker", defaultSpeaker(), "a TTS node `binary` that speaks the stt sample input (\"\": silence only)")
	cmd.Flags().StringVar(&unknown, "unknown-events", "", "the runtime's gateway.unknown_events for outputs of types it does not know: reject, drop or pass (default: the runtime's default)")
	return cmd
}

func runCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		nf            nodeFlags
		input, output string
		text          string
	)
	cmd := &cobra.Command{
		Use:   `run BINARY [--config cfg.json] (--input in.wav | --text "...") [--output out.wav]`,
		Short: "Run one invocation on a node binary: text outputs to stdout, audio to --output",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (input == "") == (text == "") {
				return usageError{errors.New("give exactly one of --input and --text")}
			}
			bin, raw, dir, err := nf.resolve(args[0])
			if err != nil {
				return err
			}
			opts := conformance.RunOptions{Binary: bin, Config: raw, ConfigDir: dir, Timeout: nf.timeout, Text: text}
			if input != "" {
				if opts.Audio, err = wav.ReadFile(input); err != nil {
					return usageError{fmt.Errorf("--input: %w", err)}
				}
			}
			opts.OnText = func(t eventabi.Type, s string) { fmt.Fprintf(stdout, "%s\t%s\n", t, s) }
			var w *wav.Writer
			if output != "" {
				if w, err = wav.Create(output); err != nil {
					return fmt.Errorf("--output: %w", err)
				}
				opts.OnAudio = func(a *eventabi.Audio) error {
					_, err := w.Write(a.PCM)
					return err
				}
			}
			sum, err := conformance.RunOnce(cmd.Context(), opts)
			if w != nil {
				err = errors.Join(err, w.Close())
			}
			if sum.AudioBytes > 0 {
				where := output
				if where == "" {
					where = "nowhere (no --output)"
				}
				fmt.Fprintf(stderr, "%d bytes of audio written to %s\n", sum.AudioBytes, where)
			}
			return err
		},
	}
	nf.register(cmd, 30*time.Second)
	cmd.Flags().StringVar(&input, "input", "", "WAV file (16 kHz mono s16le) fed as 20 ms audio frames")
	cmd.Flags().StringVar(&text, "text", "", "text fed as the event the node's kind reads")
	cmd.Flags().StringVar(&output, "output", "", "WAV file for the node's audio outputs")
	return cmd
}

// defaultSpeaker is the espeak node installed beside rspp-node
// (bin/providers/espeak), or "" when there is none.
func defaultSpeaker() string {
	self, err := os.Executable()
	if err != nil {
		return ""
	}
	p := filepath.Join(filepath.Dir(self), "providers", "espeak")
	if st, err := os.Stat(p); err != nil || st.IsDir() {
		return ""
	}
	return p
}
