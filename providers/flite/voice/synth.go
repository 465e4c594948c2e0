// Package voice is the engine of the flite TTS provider: it runs flite with
// its WAV on stdout into sox to get 16 kHz mono s16le PCM and streams it
// out as 20 ms audio.frame events.
//
// It owns both children of each invocation (killed when the invocation's
// context is cancelled, always reaped before Invoke returns). It never runs
// a shell: the text reaches flite as one argv element.
package voice

import (
	"context"
	"slices"
	"strconv"
	"strings"

	"github.com/rspp/rspp/providers/internal/tool"
)

// Defaults.
const (
	DefaultVoice  = "slt" // the 16 kHz US English voice
	DefaultBinary = "flite"
	DefaultSox    = "sox"
)

// Synth runs the flite | sox pipeline. Use NewSynth to resolve and check it.
type Synth struct {
	Flite   string // resolved path of flite
	Sox     string // resolved path of sox
	Voice   string
	Stretch float64 // duration_stretch: 1 is flite's own pace, >1 slower
}

// NewSynth resolves the programs on $PATH; empty/zero values take the
// defaults. It does not check the voice (see CheckVoice).
func NewSynth(flite, sox, voice string, stretch float64) (Synth, error) {
	s := Synth{Flite: flite, Sox: sox, Voice: voice, Stretch: stretch}
	if s.Flite == "" {
		s.Flite = DefaultBinary
	}
	if s.Sox == "" {
		s.Sox = DefaultSox
	}
	if s.Voice == "" {
		s.Voice = DefaultVoice
	}
	if s.Stretch == 0 {
		s.Stretch = 1
	}
	if s.Stretch < 0.5 || s.Stretch > 3 {
		return Synth{}, &tool.ConfigError{Field: "stretch", Reason: "duration stretch " + strconv.FormatFloat(s.Stretch, 'g', -1, 64) + " outside 0.5..3"}
	}
	var err error
	if s.Flite, err = tool.Find(s.Flite, "flite"); err != nil {
		return Synth{}, err
	}
	if s.Sox, err = tool.Find(s.Sox, "sox"); err != nil {
		return Synth{}, err
	}
	return s, nil
}

// CheckVoice asks flite for its voices (flite -lv) so an unknown voice
// fails at configuration time, as a *tool.ConfigError naming it.
func (s Synth) CheckVoice(ctx context.Context) error {
	c := tool.Command(ctx, s.Flite, "-lv")
	out, err := c.Output()
	if err = c.Err(ctx, err); err != nil {
		return err
	}
	_, list, _ := strings.Cut(string(out), ":")
	voices := strings.Fields(list)
	if !slices.Contains(voices, s.Voice) {
		return &tool.ConfigError{Field: "voice", Reason: "flite has no voice " + strconv.Quote(s.Voice) + " (it has: " + strings.Join(voices, ", ") + ")"}
	}
	return nil
}

func (s Synth) args(text string) []string {
	return []string{"-voice", s.Voice, "--setf", "duration_stretch=" + strconv.FormatFloat(s.Stretch, 'g', -1, 64), "-t", text, "-o", "/dev/stdout"}
}

// Stream synthesises text and calls chunk with the PCM (16 kHz mono s16le)
// as it comes out of sox, in pieces that chunk may keep. If chunk returns
// an error or ctx is cancelled, both children are killed and reaped and
// that error (or ctx.Err()) is returned.
func (s Synth) Stream(ctx context.Context, text string, chunk func(pcm []byte) error) error {
	return tool.StreamSpeech(ctx, s.Sox, s.Flite, s.args(text), chunk)
}
