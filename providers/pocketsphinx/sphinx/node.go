package sphinx

import (
	"context"
	"errors"
	"os"
	"sync/atomic"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/kernel/eventabi"
	"github.com/rspp/rspp/transports/wav"
)

// Name is the provider's name.
const Name = "pocketsphinx"

// Config is the provider's config block.
type Config struct {
	// Grammar is the JSGF grammar of the phrases to recognise (required;
	// relative to the runtime config's directory).
	Grammar string `json:"grammar"`
	// HMM is the acoustic model directory (default DefaultHMM).
	HMM string `json:"hmm"`
	// Dict is the pronunciation dictionary (default DefaultDict).
	Dict string `json:"dict"`
	// Binary is the decoder program (default DefaultBinary, looked up on $PATH).
	Binary string `json:"binary"`
}

// ErrNotConfigured is returned by Invoke before a successful Configure.
var ErrNotConfigured = errors.New("pocketsphinx: Invoke before Configure")

// Node is the STT node. Invocations may run concurrently.
type Node struct {
	version string
	dec     atomic.Pointer[Decoder]
}

// New returns a Node reporting version.
func New(version string) *Node { return &Node{version: version} }

// Info implements externalnode.Node.
func (n *Node) Info() externalnode.Info {
	return externalnode.Info{
		Name:    Name,
		Kind:    "stt",
		Version: n.version,
		Accepts: []eventabi.Type{eventabi.TypeAudioFrame},
		Emits:   []eventabi.Type{eventabi.TypeTranscriptFinal},
		Caps:    externalnode.Capabilities{Declared: true, SampleRates: []int{16000}, StreamingInput: true, Languages: []string{"en-US"}},
	}
}

// Configure implements externalnode.Node: it decodes the block and checks
// that the decoder and its files exist.
func (n *Node) Configure(ctx context.Context, cfg externalnode.Config) error {
	var c Config
	if err := cfg.Decode(&c); err != nil {
		return err
	}
	if c.Grammar == "" {
		return &missingFieldError{"grammar"}
	}
	d, err := NewDecoder(c.Binary, cfg.Path(c.HMM), cfg.Path(c.Dict), cfg.Path(c.Grammar))
	if err != nil {
		return err
	}
	// Under the runtime the trimmed dictionary lives in the instance's
	// scratch dir, which goes when the instance stops. Outside it (a
	// check, a test) there is no dir to clean up, so the node decodes with
	// the full dictionary and leaves no file behind.
	if dir := os.Getenv(ScratchEnv); dir != "" {
		d = d.Trimmed(dir)
	}
	n.dec.Store(&d)
	return nil
}

type missingFieldError struct{ field string }

func (e *missingFieldError) Error() string {
	return "pocketsphinx: config field \"" + e.field + "\" is required"
}

// Invoke implements externalnode.Node: it streams the audio frames into a
// temp WAV file until the inputs close, decodes it and emits one
// transcript.final (empty when there was no audio).
func (n *Node) Invoke(ctx context.Context, call *externalnode.Call) error {
	d := n.dec.Load()
	if d == nil {
		return ErrNotConfigured
	}
	u := &utterance{}
	defer u.discard()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-call.Inputs():
			if !ok {
				done = true
				break
			}
			if ev.Type != eventabi.TypeAudioFrame || ev.Audio == nil {
				continue
			}
			if err := u.add(ev.Audio); err != nil {
				return err
			}
		}
	}
	text := ""
	if u.bytes > 0 {
		if err := u.w.Close(); err != nil {
			return err
		}
		var err error
		if text, err = d.DecodeFile(ctx, u.path); err != nil {
			return err
		}
	}
	return call.EmitText(eventabi.TypeTranscriptFinal, text, true)
}

// utterance is the temp WAV file of one invocation, created on the first
// frame.
type utterance struct {
	path  string
	w     *wav.Writer
	bytes int
}

func (u *utterance) add(a *eventabi.Audio) error {
	// An undeclared format is the ABI default (16 kHz mono).
	if a.SampleRate != 0 && a.SampleRate != wav.SampleRate {
		return &wav.FormatError{Field: "sample rate", Got: a.SampleRate, Want: wav.SampleRate}
	}
	if a.Channels != 0 && a.Channels != wav.Channels {
		return &wav.FormatError{Field: "channels", Got: a.Channels, Want: wav.Channels}
	}
	if u.w == nil {
		f, err := os.CreateTemp(tempDir(), "rspp-pocketsphinx-*.wav")
		if err != nil {
			return err
		}
		u.path = f.Name()
		f.Close()
		if u.w, err = wav.Create(u.path); err != nil {
			return err
		}
	}
	n, err := u.w.Write(a.PCM)
	u.bytes += n
	return err
}

// discard closes and removes the temp file, if any.
func (u *utterance) discard() {
	if u.w != nil {
		u.w.Close()
		os.Remove(u.path)
	}
}
