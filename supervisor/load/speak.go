package load

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/kernel/eventabi"
	"github.com/rspp/rspp/supervisor"
	"github.com/rspp/rspp/supervisor/config"
)

// ErrNoSpeaker: the pipeline has no TTS node whose provider can speak the
// scripted phrases as 16 kHz mono audio.
var ErrNoSpeaker = errors.New("no tts node to speak the scripted phrases")

// speakTimeout bounds one phrase's synthesis.
const speakTimeout = 30 * time.Second

// Speak synthesises each phrase once with the pipeline's own TTS provider
// (the first tts node's provider, through its pool: one invocation per
// phrase outside any session) and returns its 16 kHz mono s16le audio.
// The runtime links no speech engine: whatever speaks to the user speaks
// the script.
func Speak(ctx context.Context, rt *supervisor.Runtime, phrases []string) ([][]byte, error) {
	provider := ttsProvider(rt.Config())
	if provider == "" {
		return nil, ErrNoSpeaker
	}
	b, ok := rt.Binding(provider)
	if !ok || b.Down != "" {
		return nil, fmt.Errorf("%w: provider %s is not serving (%s)", ErrNoSpeaker, provider, b.Down)
	}
	out := make([][]byte, 0, len(phrases))
	for i, p := range phrases {
		pcm, err := speakOne(ctx, rt, b.Pool, "script-"+strconv.Itoa(i), p)
		if err != nil {
			return nil, fmt.Errorf("speaking %q with %s: %w", p, provider, err)
		}
		out = append(out, pcm)
	}
	return out, nil
}

// ttsProvider is the provider of the first node whose provider is of kind
// tts ("" when none).
func ttsProvider(cfg *config.Config) string {
	for _, n := range cfg.Pipeline.Nodes {
		if p := cfg.Providers[n.Provider]; p != nil && p.Kind == "tts" {
			return n.Provider
		}
	}
	return ""
}

func speakOne(ctx context.Context, rt *supervisor.Runtime, poolKey, id, text string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, speakTimeout)
	defer cancel()
	var (
		mu  sync.Mutex
		pcm []byte
		bad error
	)
	end := make(chan error, 1)
	call, err := rt.Open(poolKey, externalnode.OpenRequest{InvocationID: id, SessionID: "script", TurnID: id, NodeID: "tts",
		Deadline: time.Now().Add(speakTimeout)}, nil, externalnode.Handler{
		OnEvent: func(ev eventabi.Event) {
			a := ev.Audio
			if ev.Type != eventabi.TypeAudioFrame || a == nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if a.SampleRate != 16000 || a.Channels != 1 {
				bad = fmt.Errorf("audio at %d Hz x %d channels, want 16000 Hz mono", a.SampleRate, a.Channels)
				return
			}
			pcm = append(pcm, a.PCM...)
		},
		OnEnd: func(err error) { end <- err },
	})
	if err != nil {
		return nil, err
	}
	ev := eventabi.Event{Type: eventabi.TypeTextFinal, Lane: eventabi.LaneData, SchemaVersion: eventabi.SchemaVersion,
		Text: &eventabi.Text{Text: text, Final: true}}
	if err := call.Send(ev); err != nil {
		call.Cancel("script")
		return nil, err
	}
	if err := call.CloseInput(); err != nil {
		call.Cancel("script")
		return nil, err
	}
	select {
	case err = <-end:
	case <-ctx.Done():
		call.Cancel("script")
		return nil, ctx.Err()
	}
	mu.Lock()
	defer mu.Unlock()
	switch {
	case err != nil:
		return nil, err
	case bad != nil:
		return nil, bad
	case len(pcm) == 0:
		return nil, errors.New("no audio")
	}
	return pcm, nil
}
