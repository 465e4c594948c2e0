package conformance

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/kernel/eventabi"
)

// RunOptions says how to run one invocation on a node binary.
type RunOptions struct {
	Binary    string
	Config    []byte
	ConfigDir string
	Timeout   time.Duration // handshake and the invocation (default 30 s)
	Env       []string
	// SocketRoot is as in Options.
	SocketRoot string
	// Exactly one of Audio (16 kHz mono s16le PCM) and Text.
	Audio []byte
	Text  string
	// OnText sees each text-carrying output; OnAudio each audio output's
	// PCM. Both are called in output order from one goroutine.
	OnText  func(t eventabi.Type, text string)
	OnAudio func(a *eventabi.Audio) error
}

// ErrNoInput says RunOnce was given neither audio nor text, or both.
var ErrNoInput = errors.New("exactly one of audio or text input is required")

// RunSummary says what one run saw.
type RunSummary struct {
	Name, Kind, Version string
	Outputs             int
	AudioBytes          int
}

// RunOnce starts the node, configures it, feeds it the input as one
// invocation and reports its outputs. Text goes in as the event a node of
// the reported kind reads (TextInput). The node is stopped before return.
func RunOnce(ctx context.Context, opts RunOptions) (RunSummary, error) {
	var sum RunSummary
	if (opts.Audio == nil) == (opts.Text == "") {
		return sum, ErrNoInput
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	s, err := start(ctx, opts.Binary, opts.Env, opts.SocketRoot, opts.Timeout)
	if err != nil {
		return sum, err
	}
	defer s.close()
	info := s.inst.Info()
	sum.Name, sum.Kind, sum.Version = info.Name, info.Kind, info.Version
	cctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	if err := s.inst.Configure(cctx, configFor(opts.Config, opts.ConfigDir)); err != nil {
		return sum, err
	}
	in := AudioInput(opts.Audio)
	if opts.Audio == nil {
		if in = TextInput(info.Kind, opts.Text); in == nil {
			return sum, fmt.Errorf("node %s is of kind %s: it takes audio, use --input", info.Name, info.Kind)
		}
	}
	var sinkErr error // written only by the reader goroutine, read after the end
	inv, err := s.open("run-1", externalnode.OutputBudget{}, func(ev eventabi.Event) {
		sum.Outputs++
		switch {
		case ev.Text != nil && opts.OnText != nil:
			opts.OnText(ev.Type, ev.Text.Text)
		case ev.Audio != nil:
			sum.AudioBytes += len(ev.Audio.PCM)
			if opts.OnAudio != nil && sinkErr == nil {
				sinkErr = opts.OnAudio(ev.Audio)
			}
		}
	})
	if err != nil {
		return sum, err
	}
	if err := inv.send(in); err != nil {
		inv.call.Abandon()
		return sum, err
	}
	if err := inv.call.CloseInput(); err != nil {
		inv.call.Abandon()
		return sum, err
	}
	o, err := inv.wait(opts.Timeout)
	if err != nil {
		return sum, err
	}
	if o.Err != nil {
		return sum, o.Err
	}
	return sum, sinkErr
}
