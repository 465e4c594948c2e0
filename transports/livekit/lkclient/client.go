// Package lkclient is a LiveKit test participant: it joins a room,
// publishes PCM as its microphone (Opus through the rspp-opus helper,
// paced at real time) and records what the agent says to it: the agent's
// audio track (decoded, with arrival times) and its data messages. The
// tests and cmd/rspp-livekit-say use it.
package lkclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/rspp/rspp/transports/livekit"
	"github.com/rspp/rspp/transports/livekit/opuscodec"
)

// Frame is one piece of agent audio as it arrived.
type Frame struct {
	At  time.Time
	PCM []byte // 16 kHz mono s16le
}

// Received is one data message from the agent.
type Received struct {
	At time.Time
	livekit.Message
}

// Options of Join.
type Options struct {
	OpusBinary string
	// Stereo publishes the microphone as a stereo Opus track (both
	// channels the same PCM): the agent must downmix it.
	Stereo bool
	// Video also publishes a (blank) VP8 video track: the agent must
	// ignore it.
	Video bool
	// Impair, if set, emulates a lossy, jittery network on the
	// participant's RTP, both ways.
	Impair Impair
}

// Client is one joined participant.
type Client struct {
	Identity string
	room     *lksdk.Room
	mic      *lksdk.LocalTrack
	enc      *opuscodec.Client
	dec      *opuscodec.Client
	stereo   *stereoEncoder

	mu         sync.Mutex
	frames     []Frame
	msgs       []Received
	notify     chan struct{}
	sub        bool
	wg         sync.WaitGroup
	closed     bool
	sentAt     time.Time // wall clock of the last microphone frame written
	queue      []byte
	voiceEnd   time.Time
	voiceStart time.Time
	stopMic    chan struct{}
	agentLeft  time.Time
	impair     Impair
	opusBin    string
	micErr     error
}

// AgentLeft is when an agent participant left the room (zero: none did).
func (c *Client) AgentLeft() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.agentLeft
}

// Agents are the agent participants in the room now.
func (c *Client) Agents() []string {
	var ids []string
	for _, rp := range c.room.GetRemoteParticipants() {
		if rp.Kind() == lksdk.ParticipantAgent {
			ids = append(ids, rp.Identity())
		}
	}
	return ids
}

// Join connects to the room with token as identity and publishes a
// microphone track.
func Join(ctx context.Context, url, token, identity string, o Options) (*Client, error) {
	bin, err := opuscodec.FindBinary(o.OpusBinary)
	if err != nil {
		return nil, err
	}
	livekit.QuietSDK()
	c := &Client{Identity: identity, notify: make(chan struct{}, 1), stopMic: make(chan struct{}), opusBin: bin}
	if c.enc, err = opuscodec.Start(context.WithoutCancel(ctx), bin, opuscodec.ModeEncode); err != nil {
		return nil, err
	}
	if c.dec, err = opuscodec.Start(context.WithoutCancel(ctx), bin, opuscodec.ModeDecode); err != nil {
		_ = c.enc.Close()
		return nil, err
	}
	cb := lksdk.NewRoomCallback()
	cb.OnTrackSubscribed = c.trackSubscribed
	cb.OnParticipantDisconnected = func(rp *lksdk.RemoteParticipant) {
		if rp.Kind() == lksdk.ParticipantAgent {
			c.mu.Lock()
			c.agentLeft = time.Now()
			c.mu.Unlock()
			c.kick()
		}
	}
	cb.OnDataPacket = func(p lksdk.DataPacket, params lksdk.DataReceiveParams) {
		u, ok := p.(*lksdk.UserDataPacket)
		if !ok || u.Topic != livekit.Topic {
			return
		}
		var m livekit.Message
		if json.Unmarshal(u.Payload, &m) != nil {
			return
		}
		c.mu.Lock()
		c.msgs = append(c.msgs, Received{At: time.Now(), Message: m})
		c.mu.Unlock()
		c.kick()
	}
	var copts []lksdk.ConnectOption
	if o.Impair.active() {
		c.impair = o.Impair
		copts = append(copts, lksdk.WithInterceptors([]interceptor.Factory{impairFactory{o.Impair}}), lksdk.WithIncludeDefaultInterceptors(true))
	}
	room, err := lksdk.ConnectToRoomWithToken(url, token, cb, copts...)
	if err != nil {
		c.closeCodecs()
		return nil, fmt.Errorf("join %s: %w", url, err)
	}
	c.room = room
	ch := 1
	if o.Stereo {
		ch = 2
	}
	mic, err := lksdk.NewLocalTrack(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2})
	if err != nil {
		c.Close()
		return nil, err
	}
	if _, err := room.LocalParticipant.PublishTrack(mic, &lksdk.TrackPublicationOptions{Name: "microphone", Source: 2, DisableDTX: true, Stereo: ch == 2}); err != nil {
		c.Close()
		return nil, fmt.Errorf("publish microphone: %w", err)
	}
	c.mic = mic
	if o.Stereo {
		c.stereo = &stereoEncoder{}
	}
	if o.Video {
		if err := c.publishVideo(); err != nil {
			c.Close()
			return nil, err
		}
	}
	c.wg.Add(1)
	go c.pump()
	return c, nil
}

func (c *Client) kick() {
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

func (c *Client) trackSubscribed(track *webrtc.TrackRemote, pub *lksdk.RemoteTrackPublication, rp *lksdk.RemoteParticipant) {
	if track.Kind() != webrtc.RTPCodecTypeAudio || pub.Name() != livekit.AgentTrackName(c.Identity) {
		return
	}
	c.mu.Lock()
	if c.sub || c.closed {
		c.mu.Unlock()
		return
	}
	c.sub = true
	c.wg.Add(1)
	c.mu.Unlock()
	in := make(chan *rtp.Packet, 256)
	go func() {
		defer close(in)
		var held sync.WaitGroup
		defer held.Wait()
		for {
			pkt, _, err := track.ReadRTP()
			if err != nil {
				return
			}
			if !c.impair.active() {
				in <- pkt
				continue
			}
			if c.impair.drop() {
				continue
			}
			held.Add(1)
			time.AfterFunc(c.impair.delay(), func() {
				defer held.Done()
				select {
				case in <- pkt:
				default:
				}
			})
		}
	}()
	go func() {
		defer c.wg.Done()
		var last uint16
		started := false
		for pkt := range in {
			// A naive receiver: a packet older than the last one played
			// is dropped.
			if started && int16(pkt.SequenceNumber-last) <= 0 {
				continue
			}
			last, started = pkt.SequenceNumber, true
			at := time.Now()
			pcm, err := c.dec.Code(pkt.Payload)
			if err != nil {
				if opuscodec.IsExited(err) {
					for range in {
					}
					return
				}
				continue
			}
			c.mu.Lock()
			c.frames = append(c.frames, Frame{At: at, PCM: append([]byte(nil), pcm...)})
			c.mu.Unlock()
			c.kick()
		}
	}()
}

// Say queues pcm (16 kHz mono s16le) for the microphone: the pump sends
// it at real time, 20 ms a frame, then silence again. It does not wait.
func (c *Client) Say(pcm []byte) {
	c.mu.Lock()
	c.queue = append(c.queue, pcm...)
	c.voiceStart = time.Time{}
	c.mu.Unlock()
}

// VoiceStart is when the first voiced frame of the last Say was sent
// (zero until it was).
func (c *Client) VoiceStart() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.voiceStart
}

// Saying says whether queued speech is still being sent.
func (c *Client) Saying() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.queue) > 0
}

// VoiceEnd is when the last voiced frame of queued speech was sent.
func (c *Client) VoiceEnd() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.voiceEnd
}

// pump is the microphone: a frame every 20 ms, speech when queued,
// silence otherwise (as a live microphone sends).
func (c *Client) pump() {
	defer c.wg.Done()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	silence := make([]byte, opuscodec.FrameBytes)
	for {
		select {
		case <-c.stopMic:
			return
		case <-t.C:
		}
		frame := silence
		c.mu.Lock()
		speech := len(c.queue) > 0
		if speech {
			frame = make([]byte, opuscodec.FrameBytes)
			n := copy(frame, c.queue)
			c.queue = c.queue[n:]
			if len(c.queue) == 0 {
				c.queue = nil
			}
		}
		c.mu.Unlock()
		if err := c.writeFrame(frame); err != nil {
			c.mu.Lock()
			c.micErr = err
			c.mu.Unlock()
			c.kick()
			return
		}
		if speech && Voiced(frame) {
			now := time.Now()
			c.mu.Lock()
			if c.voiceStart.IsZero() {
				c.voiceStart = now
			}
			c.voiceEnd = now
			c.mu.Unlock()
		}
	}
}

func (c *Client) writeFrame(frame []byte) error {
	var pkt []byte
	var err error
	if c.stereo != nil {
		pkt, err = c.stereo.encode(c, frame)
	} else {
		pkt, err = c.enc.Code(frame)
	}
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.sentAt = time.Now()
	c.mu.Unlock()
	return c.mic.WriteSample(media.Sample{Data: append([]byte(nil), pkt...), Duration: 20 * time.Millisecond}, nil)
}

// LastSent is when the last microphone frame was written.
func (c *Client) LastSent() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sentAt
}

// Frames returns the agent audio received so far.
func (c *Client) Frames() []Frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Frame(nil), c.frames...)
}

// Messages returns the data messages received so far.
func (c *Client) Messages() []Received {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Received(nil), c.msgs...)
}

// ErrTimeout: WaitFor's condition did not hold in time.
var ErrTimeout = errors.New("lkclient: timed out")

// WaitFor waits until cond holds over the messages received so far.
func (c *Client) WaitFor(ctx context.Context, limit time.Duration, cond func([]Received) bool) ([]Received, error) {
	t := time.NewTimer(limit)
	defer t.Stop()
	for {
		ms := c.Messages()
		if cond(ms) {
			return ms, nil
		}
		select {
		case <-c.notify:
		case <-t.C:
			c.mu.Lock()
			micErr := c.micErr
			c.mu.Unlock()
			return ms, fmt.Errorf("%w after %s; messages: %s (microphone error: %v)", ErrTimeout, limit, Summary(ms), micErr)
		case <-ctx.Done():
			return ms, ctx.Err()
		}
	}
}

// Close leaves the room and stops the codecs. Safe to call twice.
func (c *Client) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.mu.Unlock()
	close(c.stopMic)
	if c.room != nil {
		c.room.Disconnect()
	}
	c.wg.Wait()
	c.closeCodecs()
}

// Drop leaves the room without a word (the tests' network loss).
func (c *Client) Drop() { c.Close() }

func (c *Client) closeCodecs() {
	if c.stereo != nil && c.stereo.enc != nil {
		_ = c.stereo.enc.Close()
	}
	if c.enc != nil {
		_ = c.enc.Close()
	}
	if c.dec != nil {
		_ = c.dec.Close()
	}
}

// Summary renders messages for a failure message.
func Summary(ms []Received) string {
	s := ""
	for _, m := range ms {
		s += m.Type
		switch m.Type {
		case "turn":
			s += ":" + m.State
		case "transcript", "reply":
			s += fmt.Sprintf(":%q", m.Text)
		case "error", "notice", "fence":
			s += ":" + m.Reason
		}
		s += " "
	}
	return s
}

// Voiced says whether a 16 kHz s16le frame holds speech (RMS above
// -40 dBFS, the example pipeline's VAD threshold).
func Voiced(pcm []byte) bool {
	var sum float64
	n := len(pcm) / 2
	if n == 0 {
		return false
	}
	for i := 0; i+1 < len(pcm); i += 2 {
		v := float64(int16(uint16(pcm[i]) | uint16(pcm[i+1])<<8))
		sum += v * v
	}
	return sum/float64(n) > 327.68*327.68 // (0.01 * 32768)^2
}
