package wav

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func pcmRamp(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}

// chunk builds one RIFF chunk (with its pad byte).
func chunk(id string, body []byte) []byte {
	out := append([]byte(id), 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(out[4:8], uint32(len(body)))
	out = append(out, body...)
	if len(body)%2 == 1 {
		out = append(out, 0)
	}
	return out
}

func fmtBody(format, channels uint16, rate uint32, bits uint16) []byte {
	b := make([]byte, 16)
	le := binary.LittleEndian
	le.PutUint16(b[0:], format)
	le.PutUint16(b[2:], channels)
	le.PutUint32(b[4:], rate)
	le.PutUint32(b[8:], rate*uint32(channels)*uint32(bits)/8)
	le.PutUint16(b[12:], channels*bits/8)
	le.PutUint16(b[14:], bits)
	return b
}

func riff(chunks ...[]byte) []byte {
	body := []byte("WAVE")
	for _, c := range chunks {
		body = append(body, c...)
	}
	return chunk("RIFF", body)
}

func TestEncodeParseRoundTrip(t *testing.T) {
	for _, n := range []int{0, 2, 640, 12346} {
		pcm := pcmRamp(n)
		got, err := Parse(Encode(pcm))
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if !bytes.Equal(got, pcm) {
			t.Fatalf("n=%d: round trip changed the PCM", n)
		}
	}
}

func TestParseSkipsUnknownChunks(t *testing.T) {
	pcm := pcmRamp(100)
	b := riff(
		chunk("LIST", []byte("odd")), // odd size: pad byte must be skipped
		chunk("fmt ", fmtBody(1, 1, 16000, 16)),
		chunk("fact", []byte{1, 2, 3, 4}),
		chunk("data", pcm),
		chunk("junk", []byte("after data")),
	)
	got, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, pcm) {
		t.Fatal("wrong PCM")
	}
}

func TestParseExtensible(t *testing.T) {
	body := fmtBody(formatExtensible, 1, 16000, 16)
	ext := make([]byte, 24)
	binary.LittleEndian.PutUint16(ext[0:], 22)
	binary.LittleEndian.PutUint16(ext[8:], formatPCM) // sub-format GUID starts with the tag
	body = append(body, ext...)
	if _, err := Parse(riff(chunk("fmt ", body), chunk("data", pcmRamp(4)))); err != nil {
		t.Fatal(err)
	}
}

func TestParseStreamingPlaceholderSize(t *testing.T) {
	// espeak-ng --stdout writes 0x7ffff000 as the data size.
	b := riff(chunk("fmt ", fmtBody(1, 1, 16000, 16)), chunk("data", nil))
	binary.LittleEndian.PutUint32(b[len(b)-4:], 0x7ffff000)
	b = append(b, pcmRamp(10)...)
	got, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 10 {
		t.Fatalf("got %d bytes of PCM, want 10", len(got))
	}
}

func TestParseErrors(t *testing.T) {
	good := chunk("fmt ", fmtBody(1, 1, 16000, 16))
	data := chunk("data", pcmRamp(8))
	truncData := chunk("data", pcmRamp(8))[:12]
	tests := []struct {
		name  string
		in    []byte
		is    error
		field string // for *FormatError
	}{
		{"empty", nil, ErrNotRIFF, ""},
		{"not riff", []byte("RIFX\x00\x00\x00\x00WAVE"), ErrNotRIFF, ""},
		{"not wave", []byte("RIFF\x00\x00\x00\x00AVI "), ErrNotRIFF, ""},
		{"no chunks", riff(), ErrNoData, ""},
		{"data before fmt", riff(data, good), ErrNoFmt, ""},
		{"short fmt", riff(chunk("fmt ", make([]byte, 10)), data), ErrTruncated, ""},
		{"truncated data", riff(good, truncData), ErrTruncated, ""},
		{"half chunk header", append(riff(good), 'd', 'a'), ErrTruncated, ""},
		{"odd data", riff(good, chunk("data", pcmRamp(3))), ErrOddData, ""},
		{"float", riff(chunk("fmt ", fmtBody(3, 1, 16000, 32)), data), nil, "audio format"},
		{"8 bit", riff(chunk("fmt ", fmtBody(1, 1, 16000, 8)), data), nil, "bits per sample"},
		{"stereo", riff(chunk("fmt ", fmtBody(1, 2, 16000, 16)), data), nil, "channels"},
		{"22050", riff(chunk("fmt ", fmtBody(1, 1, 22050, 16)), data), nil, "sample rate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.in)
			if err == nil {
				t.Fatal("no error")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("got %v, want %v", err, tc.is)
			}
			if tc.field != "" {
				var fe *FormatError
				if !errors.As(err, &fe) || fe.Field != tc.field {
					t.Fatalf("got %v, want *FormatError on %q", err, tc.field)
				}
			}
		})
	}
}

func TestWriterStreamsAndFixesHeader(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.wav")
	w, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	pcm := pcmRamp(3 * FrameBytes)
	for _, fr := range Frames(pcm) {
		if _, err := w.Write(fr); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := w.Write([]byte{0, 0}); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Write after Close: %v", err)
	}
	got, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, pcm) {
		t.Fatal("wrong PCM")
	}
	raw, _ := os.ReadFile(path)
	if !bytes.Equal(raw, Encode(pcm)) {
		t.Fatal("streamed file differs from Encode")
	}
}

func TestWriterPadsOddLength(t *testing.T) {
	path := filepath.Join(t.TempDir(), "odd.wav")
	w, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte{1, 2, 3})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, []byte{1, 2, 3, 0}) {
		t.Fatalf("got %v", got)
	}
}

func TestReadFileNamesPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.wav")
	os.WriteFile(path, []byte("nope"), 0o644)
	_, err := ReadFile(path)
	if !errors.Is(err, ErrNotRIFF) || !bytes.Contains([]byte(err.Error()), []byte(path)) {
		t.Fatalf("got %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(Encode(pcmRamp(64)))
	f.Add(riff(chunk("LIST", []byte("x")), chunk("fmt ", fmtBody(1, 1, 16000, 16)), chunk("data", pcmRamp(6))))
	f.Add(riff(chunk("fmt ", fmtBody(1, 2, 44100, 16)), chunk("data", pcmRamp(6))))
	f.Add([]byte("RIFF\xff\xff\xff\xffWAVEfmt \xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		pcm, err := Parse(b)
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) && !errors.Is(err, ErrNotRIFF) && !errors.Is(err, ErrNoFmt) &&
				!errors.Is(err, ErrNoData) && !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrOddData) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		if len(pcm)%2 != 0 {
			t.Fatalf("odd PCM length %d", len(pcm))
		}
		// What parses must survive a re-encode unchanged.
		again, err := Parse(Encode(pcm))
		if err != nil || !bytes.Equal(again, pcm) {
			t.Fatalf("re-encode: %v", err)
		}
	})
}
