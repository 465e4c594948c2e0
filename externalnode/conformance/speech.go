package conformance

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rspp/rspp/kernel/eventabi"
)

// PluginSpeech returns a SpeechFunc that speaks with a TTS node binary
// (e.g. bin/providers/espeak): each call starts it, configures it with
// no settings, sends the text and collects its audio, which must be 16
// kHz mono. The kit links no speech engine; any TTS node will do. root is
// where its socket directory is made ("" = the temp dir).
func PluginSpeech(binary, root string, timeout time.Duration) SpeechFunc {
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	return func(ctx context.Context, text string) ([]byte, error) {
		s, err := start(ctx, binary, nil, root, timeout)
		if err != nil {
			return nil, err
		}
		defer s.close()
		if err := s.inst.Configure(ctx, configFor(nil, "")); err != nil {
			return nil, fmt.Errorf("speaker %s: configure: %w", binary, err)
		}
		inv, err := s.open("speak", unlimited, nil)
		if err != nil {
			return nil, err
		}
		in := eventabi.Event{Type: eventabi.TypeTextFinal, Lane: eventabi.LaneData, SchemaVersion: eventabi.SchemaVersion,
			Text: &eventabi.Text{Text: text, Final: true}}
		if err := inv.send([]eventabi.Event{in}); err != nil {
			return nil, err
		}
		if err := inv.call.CloseInput(); err != nil {
			return nil, err
		}
		o, err := inv.wait(timeout)
		if err != nil {
			return nil, err
		}
		if o.Err != nil {
			return nil, fmt.Errorf("speaker %s: %w", binary, o.Err)
		}
		var pcm []byte
		for _, ev := range o.Events {
			if a := ev.Audio; ev.Type == eventabi.TypeAudioFrame && a != nil {
				if a.SampleRate != 16000 || a.Channels != 1 {
					return nil, fmt.Errorf("speaker %s: audio at %d Hz x %d channels, want 16000 Hz mono", binary, a.SampleRate, a.Channels)
				}
				pcm = append(pcm, a.PCM...)
			}
		}
		if len(pcm) == 0 {
			return nil, errors.New("speaker " + binary + ": no audio")
		}
		return pcm, nil
	}
}
