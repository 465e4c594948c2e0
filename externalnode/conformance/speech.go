package conformance

import "github.com/rspp/rspp/providers/espeak/synth"

// EspeakSpeech returns a SpeechFunc backed by espeak-ng + sox (en-us,
// 16 kHz mono), or nil with the reason when they are not installed.
func EspeakSpeech() (SpeechFunc, error) {
	s, err := synth.NewSynth("", "", "", 0)
	if err != nil {
		return nil, err
	}
	return s.Synthesize, nil
}
