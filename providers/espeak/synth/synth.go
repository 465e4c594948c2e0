// Package synth is the engine of the espeak TTS provider: it pipes espeak-ng
// into sox to get 16 kHz mono s16le PCM and streams it out as 20 ms
// audio.frame events while synthesis is still running.
//
// It owns both children of each invocation (killed when the invocation's
// context is cancelled, always reaped before Invoke returns). It never runs
// a shell: the text reaches espeak-ng as one argv element after "--".
package synth

import (
	"context"
	"strconv"

	"github.com/rspp/rspp/providers/internal/tool"
)

// Defaults.
const (
	DefaultVoice  = "en-us"
	DefaultRate   = 150 // words per minute
	DefaultBinary = "espeak-ng"
	DefaultSox    = "sox"

	// espeak-ng accepts 80..450 words per minute.
	MinRate = 80
	MaxRate = 450
)

// Synth runs the espeak-ng | sox pipeline. Use NewSynth to resolve and check it.
type Synth struct {
	Espeak string // resolved path of espeak-ng
	Sox    string // resolved path of sox
	Voice  string
	Rate   int
}

// NewSynth resolves the programs on $PATH and checks the rate; empty/zero values
// take the defaults. It does not check the voice (see CheckVoice).
func NewSynth(espeak, sox, voice string, rate int) (Synth, error) {
	s := Synth{Espeak: espeak, Sox: sox, Voice: voice, Rate: rate}
	if s.Espeak == "" {
		s.Espeak = DefaultBinary
	}
	if s.Sox == "" {
		s.Sox = DefaultSox
	}
	if s.Voice == "" {
		s.Voice = DefaultVoice
	}
	if s.Rate == 0 {
		s.Rate = DefaultRate
	}
	if s.Rate < MinRate || s.Rate > MaxRate {
		return Synth{}, &tool.ConfigError{Field: "rate", Reason: "words per minute " + strconv.Itoa(s.Rate) + " outside " + strconv.Itoa(MinRate) + ".." + strconv.Itoa(MaxRate)}
	}
	var err error
	if s.Espeak, err = tool.Find(s.Espeak, "espeak-ng"); err != nil {
		return Synth{}, err
	}
	if s.Sox, err = tool.Find(s.Sox, "sox"); err != nil {
		return Synth{}, err
	}
	return s, nil
}

// CheckVoice runs espeak-ng once on empty text so an unknown voice fails at
// configuration time, as a *tool.ConfigError naming it.
func (s Synth) CheckVoice(ctx context.Context) error {
	c := tool.Command(ctx, s.Espeak, "-v", s.Voice, "--stdout", "--", "")
	if err := c.Err(ctx, c.Run()); err != nil {
		if ctx.Err() != nil {
			return err
		}
		return &tool.ConfigError{Field: "voice", Reason: "espeak-ng rejects voice " + strconv.Quote(s.Voice) + ": " + err.Error()}
	}
	return nil
}

// Stream synthesises text and calls chunk with the PCM (16 kHz mono s16le)
// as it comes out of sox, in arbitrary-sized pieces that chunk may keep.
// If chunk returns an error or ctx is cancelled, both children are killed
// and reaped and that error (or ctx.Err()) is returned.
func (s Synth) Stream(ctx context.Context, text string, chunk func(pcm []byte) error) error {
	return tool.StreamSpeech(ctx, s.Sox, s.Espeak, []string{"-v", s.Voice, "-s", strconv.Itoa(s.Rate), "--stdout", "--", text}, chunk)
}

// Synthesize returns the whole PCM of text.
func (s Synth) Synthesize(ctx context.Context, text string) ([]byte, error) {
	var pcm []byte
	err := s.Stream(ctx, text, func(b []byte) error { pcm = append(pcm, b...); return nil })
	return pcm, err
}
