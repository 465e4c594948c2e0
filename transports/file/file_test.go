package file

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/kernel/eventabi"
	"github.com/rspp/rspp/transports/wav"
)

// fakeIngester records what a session would receive.
type fakeIngester struct {
	evs    []eventabi.Event
	failAt int // index of the frame to refuse (-1: none)
}

func (f *fakeIngester) Ingest(ev eventabi.Event) error {
	if len(f.evs) == f.failAt {
		return errors.New("refused")
	}
	f.evs = append(f.evs, ev)
	return nil
}

func TestPlayFramesWithMediaTimeAndTrailingSilence(t *testing.T) {
	pcm := make([]byte, 3*wav.FrameBytes+10) // 3 frames and a partial one
	for i := range pcm {
		pcm[i] = 0x11
	}
	got := &fakeIngester{failAt: -1}
	src := Source{PCM: pcm, TrailingSilence: 100 * 1e6}
	if err := src.Play(context.Background(), got); err != nil {
		t.Fatal(err)
	}
	// 3 full + 1 partial (padded) + 5 silence frames
	if len(got.evs) != 9 {
		t.Fatalf("got %d frames, want 9", len(got.evs))
	}
	for i, ev := range got.evs {
		if ev.Type != eventabi.TypeAudioFrame || ev.Audio == nil || len(ev.Audio.PCM) != wav.FrameBytes {
			t.Fatalf("frame %d malformed: %+v", i, ev)
		}
		if ev.MediaNanos != int64(i)*frameNanos {
			t.Fatalf("frame %d media time %d, want %d", i, ev.MediaNanos, int64(i)*frameNanos)
		}
		if ev.Audio.SampleRate != 16000 || ev.Audio.Channels != 1 {
			t.Fatalf("frame %d format %d/%d", i, ev.Audio.SampleRate, ev.Audio.Channels)
		}
	}
	if got.evs[8].Audio.PCM[0] != 0 || got.evs[2].Audio.PCM[0] != 0x11 {
		t.Fatal("speech and trailing silence are not where they belong")
	}
	if &src.PCM[0] == &got.evs[0].Audio.PCM[0] {
		t.Fatal("frames alias the caller's buffer")
	}
}

func TestPlayStopsOnRefusalAndCancel(t *testing.T) {
	err := Source{PCM: make([]byte, 10*wav.FrameBytes)}.Play(context.Background(), &fakeIngester{failAt: 4})
	if err == nil || err.Error() != "frame 4: refused" {
		t.Fatalf("err = %v, want it to name frame 4", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := (Source{PCM: make([]byte, wav.FrameBytes), Realtime: true}).Play(ctx, &fakeIngester{failAt: -1}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want canceled", err)
	}
}

func TestSinkWritesAudioAndRefusesFencedTurns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.wav")
	s, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	frame := func(turn string, b byte) eventabi.Event {
		pcm := make([]byte, wav.FrameBytes)
		pcm[0] = b
		return eventabi.Event{Type: eventabi.TypeAudioFrame, TurnID: turn, Audio: &eventabi.Audio{PCM: pcm, SampleRate: 16000, Channels: 1}}
	}
	for _, ev := range []eventabi.Event{frame("t1", 1), frame("t2", 2)} {
		if err := s.Send(ev); err != nil {
			t.Fatal(err)
		}
	}
	s.Fence("t2", "barge_in")
	if err := s.Send(frame("t2", 3)); !errors.Is(err, kernel.ErrFenced) {
		t.Fatalf("send after fence: %v, want kernel.ErrFenced", err)
	}
	if err := s.Send(frame("t3", 4)); err != nil {
		t.Fatal(err)
	}
	bad := frame("t3", 5)
	bad.Audio.SampleRate = 8000
	if err := s.Send(bad); err == nil {
		t.Fatal("8 kHz frame accepted")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal("second close:", err)
	}
	written, refused := s.Frames()
	if written != 3 || refused != 1 {
		t.Fatalf("written %d refused %d, want 3 and 1", written, refused)
	}
	pcm, err := wav.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(pcm) != 3*wav.FrameBytes || pcm[0] != 1 || pcm[wav.FrameBytes] != 2 || pcm[2*wav.FrameBytes] != 4 {
		t.Fatalf("output holds the wrong frames (len %d)", len(pcm))
	}
}

func TestLoadNamesTheFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.wav"))
	if err == nil || !contains(err.Error(), "nope.wav") {
		t.Fatalf("err = %v", err)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
