//go:build cgo

package opuscodec

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	media "github.com/livekit/media-sdk"
	"github.com/livekit/media-sdk/opus"
	"github.com/livekit/protocol/logger"
)

// Serve runs the helper loop in mode over r/w until r ends (nil) or
// fails. A payload the codec refuses gets an error reply; the loop goes
// on.
func Serve(mode string, r io.Reader, w io.Writer) error {
	br := bufio.NewReader(r)
	bw := bufio.NewWriter(w)
	var code func([]byte) ([]byte, error)
	switch mode {
	case ModeDecode:
		var pcm media.PCM16Sample
		sink := media.NewPCM16BufferWriter(&pcm, SampleRate)
		dec, err := opus.Decode(sink, Channels, logger.GetLogger())
		if err != nil {
			return err
		}
		out := make([]byte, 0, FrameBytes*6)
		code = func(p []byte) ([]byte, error) {
			pcm = pcm[:0]
			if len(p) == 0 {
				return nil, errors.New("empty packet")
			}
			if err := dec.WriteSample(opus.Sample(p)); err != nil {
				return nil, err
			}
			out = out[:0]
			for _, s := range pcm {
				out = binary.LittleEndian.AppendUint16(out, uint16(s))
			}
			return out, nil
		}
	case ModeEncode:
		var pkt []byte
		sink := &packetSink{out: &pkt}
		enc, err := opus.Encode(sink, Channels, logger.GetLogger())
		if err != nil {
			return err
		}
		samples := make(media.PCM16Sample, FrameBytes/2)
		code = func(p []byte) ([]byte, error) {
			if len(p) != FrameBytes {
				return nil, fmt.Errorf("PCM frame of %d bytes: want %d (20 ms of 16 kHz mono s16le)", len(p), FrameBytes)
			}
			for i := range samples {
				samples[i] = int16(binary.LittleEndian.Uint16(p[2*i:]))
			}
			pkt = pkt[:0]
			if err := enc.WriteSample(samples); err != nil {
				return nil, err
			}
			return pkt, nil
		}
	case ModeEncodeStereo48:
		var pkt []byte
		sink := &packetSink{out: &pkt, rate: 48000}
		enc, err := opus.Encode(sink, 2, logger.GetLogger())
		if err != nil {
			return err
		}
		const n = FrameBytes / 2
		samples := make(media.PCM16Sample, n*3*2)
		code = func(p []byte) ([]byte, error) {
			if len(p) != FrameBytes {
				return nil, fmt.Errorf("PCM frame of %d bytes: want %d (20 ms of 16 kHz mono s16le)", len(p), FrameBytes)
			}
			// 16 -> 48 kHz by linear interpolation, mono -> stereo.
			for i := range n {
				a := int32(int16(binary.LittleEndian.Uint16(p[2*i:])))
				b := a
				if i+1 < n {
					b = int32(int16(binary.LittleEndian.Uint16(p[2*i+2:])))
				}
				for k := range int32(3) {
					v := int16(a + (b-a)*k/3)
					j := (i*3 + int(k)) * 2
					samples[j], samples[j+1] = v, v
				}
			}
			pkt = pkt[:0]
			if err := enc.WriteSample(samples); err != nil {
				return nil, err
			}
			return pkt, nil
		}
	default:
		return fmt.Errorf("mode %q: want %s or %s", mode, ModeDecode, ModeEncode)
	}
	var buf []byte
	for {
		req, err := readRequest(br, buf)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		buf = req[:0]
		out, cerr := code(req)
		if cerr != nil {
			err = writeFrame(bw, 1, true, []byte(cerr.Error()))
		} else {
			err = writeFrame(bw, 0, true, out)
		}
		if err == nil {
			err = bw.Flush()
		}
		if err != nil {
			return err
		}
	}
}

// packetSink collects the encoder's packets.
type packetSink struct {
	out  *[]byte
	rate int
}

func (s *packetSink) String() string { return "rspp-opus packets" }
func (s *packetSink) SampleRate() int {
	if s.rate != 0 {
		return s.rate
	}
	return SampleRate
}
func (s *packetSink) Close() error { return nil }
func (s *packetSink) WriteSample(p opus.Sample) error {
	*s.out = append(*s.out, p...)
	return nil
}
