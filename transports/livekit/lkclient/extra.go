package lkclient

import (
	"context"
	"fmt"
	"sync"
	"time"

	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/rspp/rspp/transports/livekit/opuscodec"
)

// stereoEncoder encodes the microphone as 48 kHz stereo Opus (a helper of
// its own in ModeEncodeStereo48).
type stereoEncoder struct {
	once sync.Once
	enc  *opuscodec.Client
	err  error
}

func (s *stereoEncoder) encode(c *Client, frame []byte) ([]byte, error) {
	s.once.Do(func() {
		bin, err := opuscodec.FindBinary(c.opusBin)
		if err != nil {
			s.err = err
			return
		}
		s.enc, s.err = opuscodec.Start(context.Background(), bin, opuscodec.ModeEncodeStereo48)
	})
	if s.err != nil {
		return nil, s.err
	}
	return s.enc.Code(frame)
}

// publishVideo publishes a VP8 camera track fed with a few placeholder
// frames: the agent must not take it.
func (c *Client) publishVideo() error {
	v, err := lksdk.NewLocalTrack(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000})
	if err != nil {
		return err
	}
	if _, err := c.room.LocalParticipant.PublishTrack(v, &lksdk.TrackPublicationOptions{Name: "camera", Source: 1, VideoWidth: 16, VideoHeight: 16}); err != nil {
		return fmt.Errorf("publish video: %w", err)
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		// A VP8 key-frame header and padding: the SFU forwards it.
		frame := append([]byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x10, 0x00, 0x10, 0x00}, make([]byte, 64)...)
		for range 25 {
			c.mu.Lock()
			closed := c.closed
			c.mu.Unlock()
			if closed {
				return
			}
			_ = v.WriteSample(media.Sample{Data: frame, Duration: 40 * time.Millisecond}, nil)
			time.Sleep(40 * time.Millisecond)
		}
	}()
	return nil
}
