package wav

import (
	"bytes"
	"errors"
	"testing"
)

func TestFrameBytes(t *testing.T) {
	if FrameBytes != 640 {
		t.Fatalf("FrameBytes = %d, want 640", FrameBytes)
	}
}

func TestFramesPadsLast(t *testing.T) {
	pcm := pcmRamp(2*FrameBytes + 10)
	fr := Frames(pcm)
	if len(fr) != 3 {
		t.Fatalf("%d frames, want 3", len(fr))
	}
	for i, f := range fr {
		if len(f) != FrameBytes {
			t.Fatalf("frame %d is %d bytes", i, len(f))
		}
	}
	if !bytes.Equal(fr[2][:10], pcm[2*FrameBytes:]) || !bytes.Equal(fr[2][10:], make([]byte, FrameBytes-10)) {
		t.Fatal("last frame not PCM + silence")
	}
	if Frames(nil) != nil {
		t.Fatal("empty PCM must give no frames")
	}
}

func TestFramerChunkedInput(t *testing.T) {
	pcm := pcmRamp(5*FrameBytes + 3)
	var got [][]byte
	emit := func(f []byte) error { got = append(got, f); return nil }
	var fr Framer
	for i := 0; i < len(pcm); i += 333 {
		if err := fr.Write(pcm[i:min(i+333, len(pcm))], emit); err != nil {
			t.Fatal(err)
		}
	}
	if fr.pending() != 3 {
		t.Fatalf("pending %d, want 3", fr.pending())
	}
	fr.Flush(emit)
	if fr.pending() != 0 || len(got) != 6 {
		t.Fatalf("pending %d frames %d", fr.pending(), len(got))
	}
	joined := bytes.Join(got, nil)
	if !bytes.Equal(joined[:len(pcm)], pcm) {
		t.Fatal("frames do not reassemble the stream")
	}
	// Frames are independent: mutating one must not touch the next.
	got[0][0] ^= 0xFF
	if got[1][0] != pcm[FrameBytes] {
		t.Fatal("frames alias each other")
	}
}

func TestFramerStopsOnEmitError(t *testing.T) {
	boom := errors.New("boom")
	var fr Framer
	calls := 0
	err := fr.Write(pcmRamp(3*FrameBytes), func([]byte) error { calls++; return boom })
	if !errors.Is(err, boom) || calls != 1 {
		t.Fatalf("err %v calls %d", err, calls)
	}
}
