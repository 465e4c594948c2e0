package config

import (
	"fmt"
	"regexp"

	"github.com/rspp/rspp/kernel"
)

// AudioSampleRate is the runtime's audio format (20 ms frames of 16 kHz
// mono s16le): what an stt or tts node requires of its providers unless
// its requires block says otherwise.
const AudioSampleRate = 16000

// Requires is a pipeline node's requirements of its providers (checked
// against the capabilities each provider declares):
//
//   - {id: tts, provider: [espeak, flite], requires: {language: en, streaming_output: true}}
type Requires struct {
	SampleRate      int    `yaml:"sample_rate"`
	Language        string `yaml:"language"`
	StreamingInput  bool   `yaml:"streaming_input"`
	StreamingOutput bool   `yaml:"streaming_output"`
}

var langTag = regexp.MustCompile(`^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$`)

func (c *Config) validateRequires(i int) error {
	r := c.Pipeline.Nodes[i].Requires
	key := fmt.Sprintf("pipeline.nodes[%d].requires", i)
	switch {
	case r.SampleRate < 0 || r.SampleRate > 0 && r.SampleRate < 8000:
		return c.errf(key+".sample_rate", "must be at least 8000 Hz, got %d", r.SampleRate)
	case r.Language != "" && !langTag.MatchString(r.Language):
		return c.errf(key+".language", "want a BCP 47 tag like en or en-US, got %q", r.Language)
	}
	return nil
}

// kernelRequires is what node n requires, defaults applied.
func (c *Config) kernelRequires(n Node) kernel.Requirements {
	r := kernel.Requirements{SampleRate: n.Requires.SampleRate, Language: n.Requires.Language,
		StreamingInput: n.Requires.StreamingInput, StreamingOutput: n.Requires.StreamingOutput}
	if p := c.Providers[n.Provider]; p != nil && (p.Kind == "stt" || p.Kind == "tts") && r.SampleRate == 0 {
		r.SampleRate = AudioSampleRate
	}
	return r
}
