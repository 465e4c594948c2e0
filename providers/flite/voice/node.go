package voice

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/kernel/eventabi"
	"github.com/rspp/rspp/providers/internal/textin"
	"github.com/rspp/rspp/transports/wav"
)

// Name is the provider's name.
const Name = "flite"

// Config is the provider's config block.
type Config struct {
	Voice   string  `json:"voice"`   // flite voice (default slt)
	Stretch float64 `json:"stretch"` // duration stretch, 0.5..3 (default 1)
	Binary  string  `json:"binary"`  // flite program (default flite)
	Sox     string  `json:"sox"`     // sox program (default sox)
}

// ErrNotConfigured is returned by Invoke before a successful Configure.
var ErrNotConfigured = errors.New("flite: Invoke before Configure")

// Node is the TTS node. Invocations may run concurrently.
type Node struct {
	version string
	cur     atomic.Pointer[Synth]
}

// New returns a Node reporting version.
func New(version string) *Node { return &Node{version: version} }

// Info implements externalnode.Node.
func (n *Node) Info() externalnode.Info {
	return externalnode.Info{
		Name:    Name,
		Kind:    "tts",
		Version: n.version,
		Accepts: []eventabi.Type{eventabi.TypeTextDelta, eventabi.TypeTextFinal},
		Emits:   []eventabi.Type{eventabi.TypeAudioFrame},
		Caps:    externalnode.Capabilities{Declared: true, SampleRates: []int{16000}, StreamingOutput: true, Languages: []string{"en"}},
	}
}

// Configure implements externalnode.Node: it resolves the programs and
// checks the voice.
func (n *Node) Configure(ctx context.Context, cfg externalnode.Config) error {
	var c Config
	if err := cfg.Decode(&c); err != nil {
		return err
	}
	s, err := NewSynth(c.Binary, c.Sox, c.Voice, c.Stretch)
	if err != nil {
		return err
	}
	if err := s.CheckVoice(ctx); err != nil {
		return err
	}
	n.cur.Store(&s)
	return nil
}

// Invoke implements externalnode.Node: it reads the text until the inputs
// close (text.final if present, else the text.delta chunks), then streams
// the speech out as 20 ms audio.frame events (the last padded with
// silence). Empty text emits nothing.
func (n *Node) Invoke(ctx context.Context, call *externalnode.Call) error {
	s := n.cur.Load()
	if s == nil {
		return ErrNotConfigured
	}
	text, err := textin.Collect(ctx, call.Inputs())
	if err != nil || text == "" {
		return err
	}
	emit := func(frame []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return call.EmitAudio(frame, wav.SampleRate, wav.Channels)
	}
	var fr wav.Framer
	if err := s.Stream(ctx, text, func(pcm []byte) error { return fr.Write(pcm, emit) }); err != nil {
		return err
	}
	return fr.Flush(emit)
}
