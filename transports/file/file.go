// Package file is the file transport: one session from a 16 kHz mono WAV,
// the agent's audio written to an output WAV. It maps the file to the Event
// ABI (20 ms audio frames with media time) and never interprets speech: turn
// detection is the kernel's.
package file

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/kernel/eventabi"
	"github.com/rspp/rspp/transports/wav"
)

// frameNanos is the media duration of one 20 ms frame.
const frameNanos = int64(20 * time.Millisecond)

// Ingester takes ingress events (session.Session satisfies it).
type Ingester interface {
	Ingest(ev eventabi.Event) error
}

// Source replays PCM as a stream of ingress audio frames.
type Source struct {
	PCM []byte
	// Realtime paces frames at 20 ms each, as a microphone would; otherwise
	// frames go as fast as the session takes them (media time still says
	// where each frame is).
	Realtime bool
	// TrailingSilence is appended so the end of the last utterance is
	// detected even when the recording stops right after it (default 1s).
	TrailingSilence time.Duration
}

// Load reads a 16 kHz mono s16le WAV; format errors name what is wrong.
func Load(path string) ([]byte, error) {
	pcm, err := wav.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("input %s: %w", path, err)
	}
	return pcm, nil
}

// Play feeds the frames to the session. A frame the kernel rejects is
// returned as an error only if ctx is still live; bad frames never stop
// the session itself.
func (s Source) Play(ctx context.Context, dst Ingester) error {
	silence := s.TrailingSilence
	if silence == 0 {
		silence = time.Second
	}
	pcm := s.PCM
	if n := int(silence/(20*time.Millisecond)) * wav.FrameBytes; n > 0 {
		pcm = append(append([]byte(nil), pcm...), make([]byte, n)...)
	}
	start := time.Now()
	for i, fr := range wav.Frames(pcm) {
		if err := ctx.Err(); err != nil {
			return err
		}
		if s.Realtime {
			due := start.Add(time.Duration(int64(i) * frameNanos))
			if d := time.Until(due); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		}
		ev := eventabi.Event{
			Type: eventabi.TypeAudioFrame, Lane: eventabi.LaneData, SchemaVersion: eventabi.SchemaVersion,
			MediaNanos: int64(i) * frameNanos,
			Audio:      &eventabi.Audio{PCM: fr, SampleRate: wav.SampleRate, Channels: wav.Channels},
		}
		if err := dst.Ingest(ev); err != nil {
			return fmt.Errorf("frame %d: %w", i, err)
		}
	}
	return nil
}

// Sink writes the agent's audio to a WAV file. Frames are written as they
// arrive, so there is nothing buffered to drop at a fence; Fence only
// remembers the turn so that a late frame of it (which the kernel should
// never send) is refused and counted.
type Sink struct {
	mu      sync.Mutex
	w       *wav.Writer
	fenced  kernel.FencedTurns
	frames  int
	refused int
	closed  bool
}

// Create opens the output WAV.
func Create(path string) (*Sink, error) {
	w, err := wav.Create(path)
	if err != nil {
		return nil, fmt.Errorf("output %s: %w", path, err)
	}
	return &Sink{w: w}, nil
}

// Send writes one egress event; audio frames go to the file, others are
// ignored here (the timeline has them).
func (s *Sink) Send(ev eventabi.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if reason, ok := s.fenced.Reason(ev.TurnID); ok {
		s.refused++
		return fmt.Errorf("file sink: %w: turn %s (%s)", kernel.ErrFenced, ev.TurnID, reason)
	}
	if ev.Audio == nil || s.closed {
		return nil
	}
	if ev.Audio.SampleRate != 0 && ev.Audio.SampleRate != wav.SampleRate {
		return fmt.Errorf("file sink: audio at %d Hz, want %d", ev.Audio.SampleRate, wav.SampleRate)
	}
	if _, err := s.w.Write(ev.Audio.PCM); err != nil {
		return err
	}
	s.frames++
	return nil
}

// Fence refuses anything later of turnID (kernel.ErrFenced).
func (s *Sink) Fence(turnID, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fenced.Add(turnID, reason)
}

// Frames is how many audio frames were written; Refused how many were
// refused after a fence.
func (s *Sink) Frames() (written, refused int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.frames, s.refused
}

// Close finishes the WAV header. Safe to call twice.
func (s *Sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.w.Close()
}
