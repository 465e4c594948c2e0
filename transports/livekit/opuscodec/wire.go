package opuscodec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Audio format on the PCM side.
const (
	SampleRate = 16000
	Channels   = 1
	FrameBytes = SampleRate / 50 * 2 // 20 ms of s16le mono
	// MaxPayload bounds one request or reply: an Opus packet is at most
	// 1275 bytes a frame, 120 ms of 48 kHz stereo at most 6 frames.
	MaxPayload = 64 << 10
)

// Modes of the helper.
const (
	ModeDecode = "decode"
	ModeEncode = "encode"
	// ModeEncodeStereo48 takes the same 16 kHz mono frames and encodes
	// them as 48 kHz stereo Opus (both channels alike): what a browser's
	// stereo microphone sends; the tests use it.
	ModeEncodeStereo48 = "encode-stereo48"
)

// Errors of the codec.
var (
	// ErrCodec: the codec refused one payload (a corrupt packet, a PCM
	// frame of the wrong size); the codec goes on.
	ErrCodec = errors.New("opus codec")
	// ErrCodecExited: the helper process is gone; nothing more is coded.
	ErrCodecExited = errors.New("opus codec: helper exited")
)

func writeFrame(w io.Writer, status byte, withStatus bool, p []byte) error {
	var hdr [5]byte
	h := hdr[:4]
	if withStatus {
		hdr[0] = status
		binary.BigEndian.PutUint32(hdr[1:], uint32(len(p)))
		h = hdr[:5]
	} else {
		binary.BigEndian.PutUint32(hdr[:4], uint32(len(p)))
	}
	if _, err := w.Write(h); err != nil {
		return err
	}
	_, err := w.Write(p)
	return err
}

func readRequest(r io.Reader, buf []byte) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > MaxPayload {
		return nil, fmt.Errorf("%w: request of %d bytes (max %d)", ErrCodec, n, MaxPayload)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	_, err := io.ReadFull(r, buf)
	return buf, err
}

func readReply(r io.Reader, buf []byte) (status byte, p []byte, err error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > MaxPayload {
		return 0, nil, fmt.Errorf("reply of %d bytes (max %d)", n, MaxPayload)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	_, err = io.ReadFull(r, buf)
	return hdr[0], buf, err
}
