package opuscodec

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var helper, whyNot string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rspp-opus-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	helper = filepath.Join(dir, BinaryName)
	if err := exec.Command("pkg-config", "--exists", "opus", "opusfile", "soxr").Run(); err != nil {
		whyNot = "needs libopus-dev libopusfile-dev libsoxr-dev pkg-config (apt) to build rspp-opus"
	} else {
		root, _ := exec.Command("go", "env", "GOMOD").Output()
		cmd := exec.Command("go", "build", "-o", helper, "./cmd/rspp-opus")
		cmd.Dir = filepath.Dir(strings.TrimSpace(string(root)))
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build rspp-opus: %v\n%s", err, out)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func start(t *testing.T, mode string) *Client {
	t.Helper()
	if whyNot != "" {
		t.Skip(whyNot)
	}
	c, err := Start(context.Background(), helper, mode)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// tone is 20 ms frames of a 440 Hz sine at -12 dBFS.
func tone(frames int) [][]byte {
	var out [][]byte
	for f := range frames {
		b := make([]byte, FrameBytes)
		for i := range FrameBytes / 2 {
			n := f*FrameBytes/2 + i
			v := int16(0.25 * 32767 * math.Sin(2*math.Pi*440*float64(n)/SampleRate))
			binary.LittleEndian.PutUint16(b[2*i:], uint16(v))
		}
		out = append(out, b)
	}
	return out
}

func rms(b []byte) float64 {
	var s float64
	for i := 0; i+1 < len(b); i += 2 {
		v := float64(int16(binary.LittleEndian.Uint16(b[i:])))
		s += v * v
	}
	return math.Sqrt(s / float64(len(b)/2))
}

func TestRoundTrip(t *testing.T) {
	for _, mode := range []string{ModeEncode, ModeEncodeStereo48} {
		t.Run(mode, func(t *testing.T) {
			enc, dec := start(t, mode), start(t, ModeDecode)
			in := tone(25)
			var out []byte
			for _, f := range in {
				pkt, err := enc.Code(f)
				if err != nil {
					t.Fatal(err)
				}
				if len(pkt) == 0 || len(pkt) > 400 {
					t.Fatalf("packet of %d bytes", len(pkt))
				}
				pcm, err := dec.Code(pkt)
				if err != nil {
					t.Fatal(err)
				}
				if len(pcm) != FrameBytes {
					t.Fatalf("decoded %d bytes, want one 16 kHz mono frame (%d)", len(pcm), FrameBytes)
				}
				out = append(out, pcm...)
			}
			// Past the codec's start-up, the tone comes back at its level.
			want := rms(in[10])
			got := rms(out[10*FrameBytes:])
			if got < want*0.7 || got > want*1.3 {
				t.Errorf("decoded RMS %.0f, input %.0f", got, want)
			}
		})
	}
}

func TestBadPayloadLosesNothingElse(t *testing.T) {
	enc, dec := start(t, ModeEncode), start(t, ModeDecode)
	if _, err := enc.Code(make([]byte, 100)); !errors.Is(err, ErrCodec) || !strings.Contains(err.Error(), "want 640") {
		t.Fatalf("short PCM frame: %v, want ErrCodec naming the size", err)
	}
	if _, err := dec.Code(nil); !errors.Is(err, ErrCodec) {
		t.Fatalf("empty packet: %v, want ErrCodec", err)
	}
	// Corrupt packets: the decoder shrugs off a few, then says so.
	var last error
	for range 8 {
		_, last = dec.Code([]byte{0xff, 0xff, 0xff, 0xff})
	}
	if !errors.Is(last, ErrCodec) {
		t.Fatalf("a run of corrupt packets: %v, want ErrCodec", last)
	}
	pkt, err := enc.Code(tone(1)[0])
	if err != nil {
		t.Fatal(err)
	}
	if pcm, err := dec.Code(pkt); err != nil || len(pcm) != FrameBytes {
		t.Fatalf("after bad input, a good packet: %d bytes, %v", len(pcm), err)
	}
}

func TestHelperGone(t *testing.T) {
	dec := start(t, ModeDecode)
	dec.kill()
	if _, err := dec.Code([]byte{0x78, 0x00}); !IsExited(err) {
		t.Fatalf("dead helper: %v, want ErrCodecExited", err)
	}
	if _, err := Start(context.Background(), "/nonexistent/rspp-opus", ModeDecode); !IsExited(err) {
		t.Fatalf("missing helper: %v", err)
	}
	if _, err := Start(context.Background(), helper, "mp3"); err == nil || !strings.Contains(err.Error(), "mode") {
		t.Fatalf("bad mode: %v", err)
	}
}
