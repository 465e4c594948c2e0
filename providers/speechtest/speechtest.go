// Package speechtest gives tests elsewhere in the module real speech: text
// to 16 kHz mono s16le PCM with espeak-ng + sox, and WAV back to text with
// pocketsphinx against a JSGF grammar. It wraps the same engines the espeak
// and pocketsphinx providers run, with their defaults.
//
// It is test support, imported only from _test.go files; it must never be
// imported by a runtime binary.
package speechtest

import (
	"context"
	"errors"
	"testing"

	"github.com/rspp/rspp/providers/espeak/synth"
	"github.com/rspp/rspp/providers/internal/tool"
	"github.com/rspp/rspp/providers/pocketsphinx/sphinx"
)

// Missing reports why the speech tools cannot run here (nil when they can):
// a *tool.MissingError or *tool.FileError naming the program or model file
// and the apt package that provides it.
func Missing() error {
	if _, err := synth.NewSynth("", "", "", 0); err != nil {
		return err
	}
	_, err := sphinx.NewDecoder("", "", "", "/dev/null")
	var fe *tool.FileError
	if errors.As(err, &fe) && fe.Field == "grammar" { // no grammar yet: fine
		err = nil
	}
	if errors.As(err, &fe) {
		return errors.Join(err, errors.New("install the "+sphinx.AptPackages+" packages"))
	}
	return err
}

// Require skips t, naming the missing tool and its apt package, unless
// espeak-ng, sox and pocketsphinx (with its en-us model) are installed.
func Require(t testing.TB) {
	t.Helper()
	if err := Missing(); err != nil {
		t.Skipf("speech tools unavailable: %v", err)
	}
}

// Synthesize returns text spoken by espeak-ng (en-us, 150 words/min) as
// 16 kHz mono s16le PCM.
func Synthesize(ctx context.Context, text string) ([]byte, error) {
	s, err := synth.NewSynth("", "", "", 0)
	if err != nil {
		return nil, err
	}
	return s.Synthesize(ctx, text)
}

// Decode recognises a canonical WAV file (16 kHz mono s16le) with
// pocketsphinx restricted to the JSGF grammar at grammarPath.
func Decode(ctx context.Context, wavPath, grammarPath string) (string, error) {
	d, err := sphinx.NewDecoder("", "", "", grammarPath)
	if err != nil {
		return "", err
	}
	return d.DecodeFile(ctx, wavPath)
}

// DecodePCM is Decode for PCM held in memory (written to a temp file that is
// removed before it returns).
func DecodePCM(ctx context.Context, pcm []byte, grammarPath string) (string, error) {
	d, err := sphinx.NewDecoder("", "", "", grammarPath)
	if err != nil {
		return "", err
	}
	return d.DecodePCM(ctx, pcm)
}
