package synth

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/kernel/eventabi"
	"github.com/rspp/rspp/providers/internal/textin"
	"github.com/rspp/rspp/transports/wav"
)

// Name is the provider's name.
const Name = "espeak"

// Config is the provider's config block.
type Config struct {
	Voice    string `json:"voice"`    // espeak-ng voice (default en-us)
	Rate     int    `json:"rate"`     // words per minute (default 150)
	Binary   string `json:"binary"`   // espeak-ng program (default espeak-ng)
	Sox      string `json:"sox"`      // sox program (default sox)
	Realtime bool   `json:"realtime"` // pace frames at 20 ms each instead of as fast as synthesised
}

// ErrNotConfigured is returned by Invoke before a successful Configure.
var ErrNotConfigured = errors.New("espeak: Invoke before Configure")

type settings struct {
	synth    Synth
	realtime bool
}

// Node is the TTS node. Invocations may run concurrently.
type Node struct {
	version string
	cur     atomic.Pointer[settings]
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
		Caps:    externalnode.Capabilities{Declared: true, SampleRates: []int{16000}, StreamingOutput: true}, // espeak-ng speaks many languages: any
		// espeak-ng speaks the same text the same way: a retry after a
		// crash may follow audio already played, which is deduplicated.
		Idempotent: true,
	}
}

// Configure implements externalnode.Node: it resolves the programs and
// checks the voice.
func (n *Node) Configure(ctx context.Context, cfg externalnode.Config) error {
	var c Config
	if err := cfg.Decode(&c); err != nil {
		return err
	}
	s, err := NewSynth(c.Binary, c.Sox, c.Voice, c.Rate)
	if err != nil {
		return err
	}
	if err := s.CheckVoice(ctx); err != nil {
		return err
	}
	n.cur.Store(&settings{synth: s, realtime: c.Realtime})
	return nil
}

// Invoke implements externalnode.Node: it reads the text until the inputs
// close (text.final if present, else the text.delta chunks), then streams
// the speech out as 20 ms audio.frame events (the last padded with
// silence) as sox produces it. Empty text emits nothing.
func (n *Node) Invoke(ctx context.Context, call *externalnode.Call) error {
	st := n.cur.Load()
	if st == nil {
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
	if st.realtime {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		first := true
		plain := emit
		emit = func(frame []byte) error {
			if !first {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-tick.C:
				}
			}
			first = false
			return plain(frame)
		}
	}
	var fr wav.Framer
	if err := st.synth.Stream(ctx, text, func(pcm []byte) error { return fr.Write(pcm, emit) }); err != nil {
		return err
	}
	return fr.Flush(emit)
}
