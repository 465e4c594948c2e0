// Package wav reads and writes the runtime's canonical audio file format:
// RIFF/WAVE holding 16 kHz mono signed 16-bit little-endian PCM, and splits
// PCM into the 20 ms frames that travel as audio.frame events.
//
// It owns the RIFF parsing and the frame arithmetic. It never resamples or
// converts: a file in any other format is rejected with a typed error
// (*FormatError) naming what is wrong, so callers convert with a real tool
// (sox) before the audio reaches the runtime.
package wav

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// The canonical format.
const (
	SampleRate    = 16000
	Channels      = 1
	BitsPerSample = 16
	// FrameBytes is one 20 ms frame at SampleRate, mono, 16-bit: 640 bytes.
	FrameBytes = SampleRate / 50 * Channels * BitsPerSample / 8

	headerBytes = 44 // RIFF + fmt (16-byte body) + data chunk header

	formatPCM        = 1
	formatExtensible = 0xFFFE
)

// Sentinel errors for malformed files; *FormatError covers well-formed files
// in a format the runtime does not take.
var (
	ErrNotRIFF   = errors.New("wav: not a RIFF/WAVE file")
	ErrNoFmt     = errors.New("wav: no fmt chunk before the data chunk")
	ErrNoData    = errors.New("wav: no data chunk")
	ErrTruncated = errors.New("wav: truncated chunk")
	ErrOddData   = errors.New("wav: data length is not a whole number of samples")
)

// Format is the content of a fmt chunk.
type Format struct {
	AudioFormat   uint16 // 1 = integer PCM (WAVE_FORMAT_EXTENSIBLE is resolved to its sub-format)
	Channels      uint16
	SampleRate    uint32
	BitsPerSample uint16
}

// FormatError says which property of a well-formed WAV file is not the
// canonical one.
type FormatError struct {
	Field string // "audio format", "channels", "sample rate", "bits per sample"
	Got   uint32
	Want  uint32
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("wav: unsupported %s %d (want %d: 16 kHz mono s16le PCM; convert with sox)", e.Field, e.Got, e.Want)
}

// check returns a *FormatError for the first non-canonical field.
func (f Format) check() error {
	switch {
	case f.AudioFormat != formatPCM:
		return &FormatError{Field: "audio format", Got: uint32(f.AudioFormat), Want: formatPCM}
	case f.BitsPerSample != BitsPerSample:
		return &FormatError{Field: "bits per sample", Got: uint32(f.BitsPerSample), Want: BitsPerSample}
	case f.Channels != Channels:
		return &FormatError{Field: "channels", Got: uint32(f.Channels), Want: Channels}
	case f.SampleRate != SampleRate:
		return &FormatError{Field: "sample rate", Got: f.SampleRate, Want: SampleRate}
	}
	return nil
}

// streamingSize is what streaming writers (espeak-ng --stdout) put in the
// data chunk size when they cannot seek back: "until the end of the file".
const streamingSize = 0x7FFFF000

// ParseFormat parses the RIFF structure of b and returns its format and the
// bytes of its data chunk, whatever the format. Unknown chunks are skipped.
// A data chunk claiming more bytes than remain is accepted only when its size
// is a streaming placeholder (>= 0x7FFFF000); otherwise it is ErrTruncated.
func ParseFormat(b []byte) (Format, []byte, error) {
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return Format{}, nil, ErrNotRIFF
	}
	var (
		f      Format
		hasFmt bool
	)
	rest := b[12:]
	for {
		if len(rest) == 0 {
			return Format{}, nil, ErrNoData
		}
		if len(rest) < 8 {
			return Format{}, nil, fmt.Errorf("%w: chunk header of %d bytes", ErrTruncated, len(rest))
		}
		id := string(rest[0:4])
		size := binary.LittleEndian.Uint32(rest[4:8])
		body := rest[8:]
		if uint64(size) > uint64(len(body)) {
			if id == "data" && size >= streamingSize {
				size = uint32(len(body))
			} else {
				return Format{}, nil, fmt.Errorf("%w: %q chunk claims %d bytes, %d remain", ErrTruncated, id, size, len(body))
			}
		}
		body = body[:size]
		switch id {
		case "fmt ":
			var err error
			if f, err = parseFmt(body); err != nil {
				return Format{}, nil, err
			}
			hasFmt = true
		case "data":
			if !hasFmt {
				return Format{}, nil, ErrNoFmt
			}
			return f, body, nil
		}
		// Chunks are padded to an even length.
		next := 8 + uint64(size) + uint64(size&1)
		if next > uint64(len(rest)) {
			next = uint64(len(rest))
		}
		rest = rest[next:]
	}
}

func parseFmt(body []byte) (Format, error) {
	if len(body) < 16 {
		return Format{}, fmt.Errorf("%w: fmt chunk of %d bytes (want >= 16)", ErrTruncated, len(body))
	}
	f := Format{
		AudioFormat:   binary.LittleEndian.Uint16(body[0:2]),
		Channels:      binary.LittleEndian.Uint16(body[2:4]),
		SampleRate:    binary.LittleEndian.Uint32(body[4:8]),
		BitsPerSample: binary.LittleEndian.Uint16(body[14:16]),
	}
	if f.AudioFormat == formatExtensible {
		// cbSize(2) validBits(2) channelMask(4) subFormat GUID(16): the
		// GUID's first two bytes are the real format tag.
		if len(body) < 40 {
			return Format{}, fmt.Errorf("%w: extensible fmt chunk of %d bytes (want >= 40)", ErrTruncated, len(body))
		}
		f.AudioFormat = binary.LittleEndian.Uint16(body[24:26])
	}
	return f, nil
}

// Parse returns the PCM of b, which must be a canonical WAV file (16 kHz
// mono s16le). Malformed files yield the sentinel errors, well-formed files
// in another format a *FormatError. The PCM aliases b.
func Parse(b []byte) ([]byte, error) {
	f, pcm, err := ParseFormat(b)
	if err != nil {
		return nil, err
	}
	if err := f.check(); err != nil {
		return nil, err
	}
	if len(pcm)%2 != 0 {
		return nil, fmt.Errorf("%w: %d bytes", ErrOddData, len(pcm))
	}
	return pcm, nil
}

// ReadFile reads a canonical WAV file and returns its PCM. Errors name the
// path.
func ReadFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pcm, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return pcm, nil
}

// Encode returns a canonical WAV file holding pcm.
func Encode(pcm []byte) []byte {
	out := make([]byte, headerBytes, headerBytes+len(pcm))
	putHeader(out, uint32(len(pcm)))
	return append(out, pcm...)
}

// WriteFile writes pcm as a canonical WAV file.
func WriteFile(path string, pcm []byte) error {
	return os.WriteFile(path, Encode(pcm), 0o644)
}

// putHeader fills the 44-byte canonical header for dataLen bytes of PCM.
func putHeader(h []byte, dataLen uint32) {
	le := binary.LittleEndian
	copy(h[0:4], "RIFF")
	le.PutUint32(h[4:8], 36+dataLen)
	copy(h[8:12], "WAVE")
	copy(h[12:16], "fmt ")
	le.PutUint32(h[16:20], 16)
	le.PutUint16(h[20:22], formatPCM)
	le.PutUint16(h[22:24], Channels)
	le.PutUint32(h[24:28], SampleRate)
	le.PutUint32(h[28:32], SampleRate*Channels*BitsPerSample/8)
	le.PutUint16(h[32:34], Channels*BitsPerSample/8)
	le.PutUint16(h[34:36], BitsPerSample)
	copy(h[36:40], "data")
	le.PutUint32(h[40:44], dataLen)
}

// ErrTooLong is returned by Writer when the PCM would not fit a RIFF file.
var ErrTooLong = errors.New("wav: data exceeds the 4 GiB RIFF limit")

// Writer streams PCM into a canonical WAV file: it writes a placeholder
// header first and fixes the sizes up on Close.
type Writer struct {
	w      io.WriteSeeker
	file   *os.File // non-nil when the Writer owns the file (Create)
	n      uint64
	closed bool
	err    error // first write error; sticky
}

// NewWriter writes a placeholder header to w. Close fixes it up; it does not
// close w.
func NewWriter(w io.WriteSeeker) (*Writer, error) {
	var h [headerBytes]byte
	putHeader(h[:], 0)
	if _, err := w.Write(h[:]); err != nil {
		return nil, err
	}
	return &Writer{w: w}, nil
}

// Create creates (truncates) path and returns a Writer that owns the file:
// Close fixes the header and closes the file.
func Create(path string) (*Writer, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	w, err := NewWriter(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	w.file = f
	return w, nil
}

// Write appends PCM (s16le, 16 kHz mono).
func (w *Writer) Write(pcm []byte) (int, error) {
	if w.closed {
		return 0, os.ErrClosed
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.n+uint64(len(pcm)) > 0xFFFFFFFF-36 {
		w.err = ErrTooLong
		return 0, w.err
	}
	n, err := w.w.Write(pcm)
	w.n += uint64(n)
	if err != nil {
		w.err = err
	}
	return n, err
}

// Close writes the final sizes into the header (and closes the file when the
// Writer owns it). It is safe to call twice; the second call does nothing.
func (w *Writer) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	err := w.err
	if err == nil {
		err = w.fixHeader()
	}
	if w.file != nil {
		if cerr := w.file.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

func (w *Writer) fixHeader() error {
	// An odd byte count cannot be a whole sample; pad so the file parses.
	if w.n%2 != 0 {
		if _, err := w.w.Write([]byte{0}); err != nil {
			return err
		}
		w.n++
	}
	var h [headerBytes]byte
	putHeader(h[:], uint32(w.n))
	if _, err := w.w.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if _, err := w.w.Write(h[:]); err != nil {
		return err
	}
	_, err := w.w.Seek(0, io.SeekEnd)
	return err
}
