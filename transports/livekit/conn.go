package livekit

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/rspp/rspp/kernel/eventabi"
	"github.com/rspp/rspp/kernel/fence"
	"github.com/rspp/rspp/transports"
	"github.com/rspp/rspp/transports/livekit/opuscodec"
)

const (
	frameDur = 20 * time.Millisecond
	// maxGapFill is the most lost packets in a row filled with silence so
	// media time stays true; a longer gap is a pause of the sender.
	maxGapFill = 10
	// jitterDepth is how many packets may wait for a missing one (60 ms):
	// reordering within it costs nothing, a loss costs that wait.
	jitterDepth = 3
	// badPacketsInRow ends the session: the track is not Opus we can
	// decode.
	badPacketsInRow = 50
)

// ConnStats are one participant session's counters.
type ConnStats struct {
	PacketsIn, FramesIn   uint64
	LatePackets           uint64 // arrived after the jitter buffer gave up on them: dropped
	LostPackets           uint64 // sequence gaps (filled with silence up to maxGapFill)
	BadPackets            uint64 // the decoder refused them
	FramesOut             uint64
	FencedDropped         uint64 // queued frames dropped by a fence or refused by the gate
	QueueFull             uint64
	MaxAudioQ, MaxControl int
}

// Conn is one remote participant's session in a room (transports.Conn).
type Conn struct {
	room     *roomSession
	identity string
	id       string
	remote   *webrtc.TrackRemote
	opts     *Options

	dec, enc *opuscodec.Client
	track    *lksdk.LocalTrack
	pubSID   string

	inbound chan eventabi.Event
	stop    chan struct{}
	wake    chan struct{}
	done    chan struct{}
	wg      sync.WaitGroup
	gate    atomic.Pointer[fence.Gate]

	mu        sync.Mutex
	ctrl      []Message
	audio     []eventabi.Event
	audioTurn string
	closing   bool
	err       error
	stopOnce  sync.Once
	closeOnce sync.Once

	statsMu sync.Mutex
	stats   ConnStats
}

func newConn(r *roomSession, identity string, remote *webrtc.TrackRemote) *Conn {
	return &Conn{room: r, identity: identity, remote: remote, opts: &r.agent.opts,
		id:      fmt.Sprintf("lk-%s-%s", r.name, identity),
		inbound: make(chan eventabi.Event, 64), stop: make(chan struct{}), wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// start runs the codecs and the read and write loops.
func (c *Conn) start() error {
	bin, err := opuscodec.FindBinary(c.opts.OpusBinary)
	if err != nil {
		return err
	}
	if c.dec, err = opuscodec.Start(c.room.ctx, bin, opuscodec.ModeDecode); err != nil {
		return err
	}
	if c.enc, err = opuscodec.Start(c.room.ctx, bin, opuscodec.ModeEncode); err != nil {
		_ = c.dec.Close()
		return err
	}
	c.wg.Add(2)
	go c.readLoop()
	go c.writeLoop()
	go func() {
		c.wg.Wait()
		_ = c.dec.Close()
		_ = c.enc.Close()
		close(c.done)
	}()
	return nil
}

// Identity is the participant's identity.
func (c *Conn) Identity() string { return c.identity }

// Room is the room's name.
func (c *Conn) Room() string { return c.room.name }

// Route implements transports.Conn.
func (c *Conn) Route() transports.Route {
	return transports.Route{SessionID: c.id, TenantID: c.opts.Tenant}
}

// Inbound implements transports.Conn.
func (c *Conn) Inbound() <-chan eventabi.Event { return c.inbound }

// Bind implements transports.Conn: the agent's track for this participant
// is published and the participant is told the session is ready.
func (c *Conn) Bind(b transports.Binding) error {
	if b.Gate != nil {
		c.gate.Store(b.Gate)
	}
	track, err := lksdk.NewLocalTrack(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2})
	if err != nil {
		return fmt.Errorf("%w: agent track: %w", transports.ErrConnectionLost, err)
	}
	room := c.room.lkRoom()
	if room == nil {
		return fmt.Errorf("%w: room %s already left", transports.ErrConnectionLost, c.room.name)
	}
	pub, err := room.LocalParticipant.PublishTrack(track, &lksdk.TrackPublicationOptions{
		Name: AgentTrackName(c.identity), Source: 0, DisableDTX: true})
	if err != nil {
		c.lostWith(fmt.Errorf("publish agent track: %w", err))
		return fmt.Errorf("%w: publish agent track: %w", transports.ErrConnectionLost, err)
	}
	c.mu.Lock()
	c.track, c.pubSID = track, pub.SID()
	c.mu.Unlock()
	c.queueCtrl(Message{Type: "ready", Session: b.SessionID})
	return nil
}

// Send implements transports.Conn: an audio frame is queued for the
// writer; other egress goes out as notices.
func (c *Conn) Send(ev eventabi.Event) error {
	if ev.Type != eventabi.TypeAudioFrame || ev.Audio == nil {
		return nil
	}
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return fmt.Errorf("%w: %s", transports.ErrConnectionLost, c.id)
	}
	if len(c.audio) >= c.opts.SendQueue {
		c.mu.Unlock()
		c.count(func(s *ConnStats) { s.QueueFull++ })
		return transports.ErrQueueFull
	}
	c.audio = append(c.audio, ev)
	n := len(c.audio)
	c.mu.Unlock()
	c.count(func(s *ConnStats) { s.MaxAudioQ = max(s.MaxAudioQ, n) })
	c.kick()
	return nil
}

// Fence implements transports.Conn: queued frames of the turn are dropped
// and the participant is told, before any later audio.
func (c *Conn) Fence(turnID, reason string) {
	c.mu.Lock()
	var dropped int
	c.audio, dropped = transports.DropTurn(c.audio, turnID)
	if c.audioTurn == turnID {
		c.audioTurn = ""
	}
	c.mu.Unlock()
	c.count(func(s *ConnStats) { s.FencedDropped += uint64(dropped) })
	c.queueCtrl(Message{Type: "fence", Turn: turnID, Reason: reason})
}

// Notify implements transports.Conn.
func (c *Conn) Notify(n transports.Notice) {
	if m, ok := transports.NoticeMessage(n); ok {
		c.queueCtrl(m)
	}
}

// Refuse implements transports.Conn: the participant is told why and its
// session ends; the room and its other sessions go on.
func (c *Conn) Refuse(err error) {
	c.endWith(fmt.Errorf("%w: %w", transports.ErrBadInput, err), err.Error())
}

// Close implements transports.Conn: the agent's track for the
// participant is unpublished. Safe to call twice; returns once the
// session's goroutines ended.
func (c *Conn) Close(reason string) {
	c.endWith(nil, "")
	c.halt()
	<-c.done
	c.closeOnce.Do(func() {
		c.mu.Lock()
		sid := c.pubSID
		c.mu.Unlock()
		if room := c.room.lkRoom(); sid != "" && room != nil {
			_ = room.LocalParticipant.UnpublishTrack(sid)
		}
		c.room.sessionEnded(c)
	})
}

// Err implements transports.Conn.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Stats returns the session's counters.
func (c *Conn) Stats() ConnStats {
	c.statsMu.Lock()
	defer c.statsMu.Unlock()
	return c.stats
}

// left: the participant left the room (or unpublished its microphone).
func (c *Conn) left() {
	c.endWith(fmt.Errorf("%w: participant %s left room %s", transports.ErrClientClosed, c.identity, c.room.name), "")
}

// lostWith: the room's connection broke.
func (c *Conn) lostWith(cause error) {
	c.endWith(fmt.Errorf("%w: %w", transports.ErrConnectionLost, cause), "")
}

// endWith starts ending the session with err (the first cause wins);
// errText, if set, goes to the participant first.
func (c *Conn) endWith(err error, errText string) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	c.closing = true
	if c.err == nil {
		c.err = err
	}
	c.audio = nil
	if errText != "" {
		c.ctrl = append([]Message{{Type: "error", Reason: errText}}, c.ctrl...)
	}
	c.mu.Unlock()
	c.kick()
	if errText == "" {
		c.halt()
	}
}

func (c *Conn) halt() { c.stopOnce.Do(func() { close(c.stop) }) }

func (c *Conn) kick() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *Conn) count(f func(*ConnStats)) {
	c.statsMu.Lock()
	f(&c.stats)
	c.statsMu.Unlock()
}

func (c *Conn) queueCtrl(m Message) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	if len(c.ctrl) >= controlQueue {
		// The data channel is not draining: drop the oldest notice rather
		// than block the session or grow without bound.
		c.ctrl = c.ctrl[1:]
	}
	c.ctrl = append(c.ctrl, m)
	n := len(c.ctrl)
	c.mu.Unlock()
	c.count(func(s *ConnStats) { s.MaxControl = max(s.MaxControl, n) })
	c.kick()
}

const controlQueue = 256

// readLoop reads the participant's Opus packets, decodes them and hands
// 20 ms frames to the session; it is the only sender on inbound and
// closes it.
func (c *Conn) readLoop() {
	defer c.wg.Done()
	defer close(c.inbound)
	frames := make(chan eventabi.Event, 64)
	go func() {
		// ReadRTP blocks; the track ends when the participant leaves or
		// the room closes (Close unpublishes and the room disconnects).
		defer close(frames)
		c.readRTP(frames)
	}()
	for {
		select {
		case <-c.stop:
			return
		case ev, ok := <-frames:
			if !ok {
				c.mu.Lock()
				if c.err == nil && !c.closing {
					c.err = fmt.Errorf("%w: participant %s's track ended", transports.ErrClientClosed, c.identity)
				}
				c.mu.Unlock()
				return
			}
			select {
			case c.inbound <- ev:
			case <-c.stop:
				return
			}
		}
	}
}

func (c *Conn) readRTP(frames chan<- eventabi.Event) {
	var (
		n       int64
		pending []byte
		badRun  int
	)
	emit := func(pcm []byte) bool {
		pending = append(pending, pcm...)
		for len(pending) >= opuscodec.FrameBytes {
			frame := make([]byte, opuscodec.FrameBytes)
			copy(frame, pending)
			pending = pending[opuscodec.FrameBytes:]
			ev := eventabi.Event{Type: eventabi.TypeAudioFrame, Lane: eventabi.LaneData, SchemaVersion: eventabi.SchemaVersion,
				MediaNanos: n * int64(frameDur),
				Audio:      &eventabi.Audio{PCM: frame, SampleRate: opuscodec.SampleRate, Channels: opuscodec.Channels}}
			n++
			c.count(func(s *ConnStats) { s.FramesIn++ })
			select {
			case frames <- ev:
			case <-c.stop:
				return false
			}
		}
		return true
	}
	silence := make([]byte, opuscodec.FrameBytes)
	jb := newReorder(jitterDepth)
	release := func(lost int, payload []byte) bool {
		if lost > 0 {
			c.count(func(s *ConnStats) { s.LostPackets += uint64(lost) })
			for range min(lost, maxGapFill) {
				if !emit(silence) {
					return false
				}
			}
		}
		if len(payload) == 0 {
			return true
		}
		pcm, err := c.dec.Code(payload)
		if err != nil {
			if opuscodec.IsExited(err) {
				c.lostWith(err)
				return false
			}
			c.count(func(s *ConnStats) { s.BadPackets++ })
			if badRun++; badRun >= badPacketsInRow {
				c.Refuse(fmt.Errorf("participant %s: %d Opus packets in a row do not decode: %v", c.identity, badRun, err))
				return false
			}
			return true
		}
		badRun = 0
		return emit(pcm)
	}
	for {
		pkt, _, err := c.remote.ReadRTP()
		if err != nil {
			return
		}
		select {
		case <-c.stop:
			return
		default:
		}
		c.count(func(s *ConnStats) { s.PacketsIn++ })
		late, ok := jb.push(pkt.SequenceNumber, pkt.Payload, release)
		if late {
			c.count(func(s *ConnStats) { s.LatePackets++ })
		}
		if !ok {
			return
		}
	}
}

// writeLoop is the session's one writer: control messages first (a fence
// before any later audio), then audio, each frame admitted against the
// session's gate right before it is encoded and written to the track.
func (c *Conn) writeLoop() {
	defer c.wg.Done()
	for {
		select {
		case <-c.wake:
		case <-c.stop:
			c.flushCtrl()
			return
		}
		for {
			c.mu.Lock()
			if len(c.ctrl) > 0 {
				m := c.ctrl[0]
				c.ctrl = c.ctrl[1:]
				c.mu.Unlock()
				c.publish(m)
				continue
			}
			if c.closing {
				c.mu.Unlock()
				c.halt()
				return
			}
			if len(c.audio) == 0 {
				c.mu.Unlock()
				break
			}
			ev := c.audio[0]
			c.audio[0] = eventabi.Event{}
			c.audio = c.audio[1:]
			start := ev.TurnID != c.audioTurn
			if start {
				c.audioTurn = ev.TurnID
			}
			track := c.track
			c.mu.Unlock()
			if g := c.gate.Load(); g != nil && g.Admit(&ev) != nil {
				c.count(func(s *ConnStats) { s.FencedDropped++ })
				continue
			}
			if start {
				c.publish(Message{Type: "audio_start", Turn: ev.TurnID})
			}
			if track == nil {
				continue
			}
			pkt, err := c.enc.Code(ev.Audio.PCM)
			if err != nil {
				if opuscodec.IsExited(err) {
					c.lostWith(err)
				}
				continue
			}
			if err := track.WriteSample(media.Sample{Data: pkt, Duration: frameDur}, nil); err != nil {
				continue
			}
			c.count(func(s *ConnStats) { s.FramesOut++ })
		}
	}
}

// flushCtrl writes what control is still queued (an error message before
// the session ends).
func (c *Conn) flushCtrl() {
	c.mu.Lock()
	ms := c.ctrl
	c.ctrl = nil
	c.mu.Unlock()
	for _, m := range ms {
		c.publish(m)
	}
}

func (c *Conn) publish(m Message) {
	m.SentUnixNano = time.Now().UnixNano()
	b, err := json.Marshal(m)
	if err != nil {
		return
	}
	room := c.room.lkRoom()
	if room == nil {
		return
	}
	_ = room.LocalParticipant.PublishDataPacket(lksdk.UserData(b), lksdk.WithDataPublishTopic(Topic),
		lksdk.WithDataPublishReliable(true), lksdk.WithDataPublishDestination([]string{c.identity}))
}

// errRoomFull is why a participant past MaxSessionsPerRoom has no session.
var errRoomFull = errors.New("room full")
