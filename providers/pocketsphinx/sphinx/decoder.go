// Package sphinx is the engine of the pocketsphinx STT provider: a Node that
// collects an utterance's audio frames and decodes them with the
// pocketsphinx_continuous program against a JSGF grammar of the phrases to
// expect (free-form decoding of synthetic speech is useless; a grammar makes
// it exact).
//
// It owns the temp WAV file and the decoder child of each invocation and
// removes/reaps them before Invoke returns. It never runs a shell.
package sphinx

import (
	"context"
	"os"
	"strings"

	"github.com/rspp/rspp/providers/internal/tool"
	"github.com/rspp/rspp/transports/wav"
)

// Defaults: the Debian pocketsphinx and pocketsphinx-en-us packages.
const (
	DefaultBinary = "pocketsphinx_continuous"
	DefaultHMM    = "/usr/share/pocketsphinx/model/en-us/en-us"
	DefaultDict   = "/usr/share/pocketsphinx/model/en-us/cmudict-en-us.dict"

	// AptPackages provide DefaultBinary, DefaultHMM and DefaultDict.
	AptPackages = "pocketsphinx pocketsphinx-en-us"
)

// Decoder runs pocketsphinx_continuous on WAV files. All fields are
// resolved paths; use NewDecoder to check them.
type Decoder struct {
	Binary  string
	HMM     string // acoustic model directory
	Dict    string // pronunciation dictionary
	Grammar string // JSGF grammar
}

// NewDecoder resolves binary on $PATH and checks that the model, dictionary
// and grammar exist. Empty binary, hmm and dict take the defaults. Errors are
// *tool.MissingError or *tool.FileError naming the field and path.
func NewDecoder(binary, hmm, dict, grammar string) (Decoder, error) {
	d := Decoder{Binary: binary, HMM: hmm, Dict: dict, Grammar: grammar}
	if d.Binary == "" {
		d.Binary = DefaultBinary
	}
	if d.HMM == "" {
		d.HMM = DefaultHMM
	}
	if d.Dict == "" {
		d.Dict = DefaultDict
	}
	var err error
	if d.Binary, err = tool.Find(d.Binary, AptPackages); err != nil {
		return Decoder{}, err
	}
	if err := tool.CheckFile("hmm", d.HMM, true); err != nil {
		return Decoder{}, err
	}
	if err := tool.CheckFile("dict", d.Dict, false); err != nil {
		return Decoder{}, err
	}
	// The grammar last: speechtest probes the installation with a dummy one.
	if err := tool.CheckFile("grammar", d.Grammar, false); err != nil {
		return Decoder{}, err
	}
	return d, nil
}

// Trimmed is d with a dictionary of its grammar's words only, written once
// per grammar and dictionary into dir (pocketsphinx loads its dictionary
// on every decode: the full en-us one was most of a short decode's CPU).
// d is returned as it is when the grammar cannot be trimmed to.
func (d Decoder) Trimmed(dir string) Decoder {
	if small, ok := trimDict(d.Dict, d.Grammar, dir); ok {
		d.Dict = small
	}
	return d
}

// DecodeFile decodes a canonical WAV file (16 kHz mono s16le) and returns the
// hypothesis: the last non-empty line the decoder prints (it prints one line
// per utterance it segments; the last is the latest thing said). Cancelling
// ctx kills the decoder.
func (d Decoder) DecodeFile(ctx context.Context, wavPath string) (string, error) {
	c := tool.Command(ctx, d.Binary,
		"-infile", wavPath,
		"-jsgf", d.Grammar,
		"-hmm", d.HMM,
		"-dict", d.Dict,
		"-logfn", os.DevNull,
		// Wider beams than the defaults (1e-48, 7e-29, 1e-48): with the
		// defaults some espeak utterances prune the grammar's final state
		// away ("Final result does not match the grammar") and decode to
		// nothing; with these, 165/165 espeak renditions of the example
		// phrases (rates 130-170, dithered or not) decode exactly, no slower.
		"-beam", "1e-80", "-wbeam", "1e-60", "-pbeam", "1e-80")
	out, err := c.Output()
	if err != nil {
		return "", c.Err(ctx, err)
	}
	return lastLine(string(out)), nil
}

// ScratchEnv names the directory the runtime gives each plugin instance for
// its temporary files; the runtime removes it when the instance stops, so a
// killed instance leaves no WAV behind.
const ScratchEnv = "RSPP_SCRATCH_DIR"

// tempDir is where temp WAVs go: the instance's scratch dir when the
// runtime gave one, else the system temp dir (a standalone run).
func tempDir() string {
	if d := os.Getenv(ScratchEnv); d != "" {
		return d
	}
	return os.TempDir()
}

// DecodePCM writes pcm to a temp WAV file, decodes it and removes the file.
// Empty pcm decodes to "" without running the decoder.
func (d Decoder) DecodePCM(ctx context.Context, pcm []byte) (string, error) {
	if len(pcm) == 0 {
		return "", nil
	}
	f, err := os.CreateTemp(tempDir(), "rspp-pocketsphinx-*.wav")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name())
	_, werr := f.Write(wav.Encode(pcm))
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return "", werr
	}
	return d.DecodeFile(ctx, f.Name())
}

func lastLine(s string) string {
	lines := strings.Split(s, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.Join(strings.Fields(lines[i]), " "); l != "" {
			return l
		}
	}
	return ""
}
