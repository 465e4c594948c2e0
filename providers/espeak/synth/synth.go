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
	"errors"
	"io"
	"os"
	"strconv"

	"github.com/rspp/rspp/providers/internal/tool"
	"github.com/rspp/rspp/transports/wav"
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
	ctx, kill := context.WithCancel(ctx)
	defer kill()

	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	speak := tool.Command(ctx, s.Espeak, "-v", s.Voice, "-s", strconv.Itoa(s.Rate), "--stdout", "--", text)
	speak.Stdout = w
	conv := tool.Command(ctx, s.Sox,
		"-t", "wav", "-",
		"-D", // no dither: the same text gives the same PCM, every run
		"-r", strconv.Itoa(wav.SampleRate), "-c", strconv.Itoa(wav.Channels),
		"-b", strconv.Itoa(wav.BitsPerSample), "-e", "signed-integer", "-t", "raw", "-")
	conv.Stdin = r
	out, err := conv.StdoutPipe()
	if err != nil {
		r.Close()
		w.Close()
		return err
	}
	if err := speak.Start(); err != nil {
		r.Close()
		w.Close()
		return speak.Err(ctx, err)
	}
	if err := conv.Start(); err != nil {
		r.Close()
		w.Close()
		kill()
		speak.Wait()
		return conv.Err(ctx, err)
	}
	// The children hold their own copies of the pipe ends now.
	r.Close()
	w.Close()

	readErr := pump(ctx, out, chunk)
	if readErr != nil {
		kill()
	}
	convErr := conv.Err(ctx, conv.Wait())
	speakErr := speak.Err(ctx, speak.Wait())
	switch {
	case readErr != nil:
		return readErr
	case speakErr != nil: // the first failure in the pipeline explains the rest
		return speakErr
	default:
		return convErr
	}
}

func pump(ctx context.Context, out io.Reader, chunk func([]byte) error) error {
	for {
		buf := make([]byte, 4096)
		n, err := out.Read(buf)
		if n > 0 {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if cerr := chunk(buf[:n]); cerr != nil {
				return cerr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
	}
}

// Synthesize returns the whole PCM of text.
func (s Synth) Synthesize(ctx context.Context, text string) ([]byte, error) {
	var pcm []byte
	err := s.Stream(ctx, text, func(b []byte) error { pcm = append(pcm, b...); return nil })
	return pcm, err
}
