package livekit

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	lkp "github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/webrtc/v4"

	"github.com/rspp/rspp/transports"
)

// roomSession is one job: the agent in one room, a Conn per remote
// participant that publishes a microphone.
type roomSession struct {
	agent *Agent
	jobID string
	name  string
	url   string
	token string

	ctx    context.Context
	cancel context.CancelFunc
	left   chan struct{} // closed by leave

	mu       sync.Mutex
	room     *lksdk.Room
	conns    map[string]*Conn // identity -> live session
	refused  map[string]bool  // identities told the room is full
	told     map[string]bool  // identities told a video track is ignored
	pending  []pendingTell    // messages from callbacks that ran before the join returned
	leaving  bool
	leaveErr error
	once     sync.Once
}

func newRoomSession(a *Agent, job *lkp.Job, url, token string) *roomSession {
	ctx, cancel := context.WithCancel(a.ctx)
	return &roomSession{agent: a, jobID: job.GetId(), name: job.GetRoom().GetName(), url: url, token: token,
		ctx: ctx, cancel: cancel, left: make(chan struct{}),
		conns: map[string]*Conn{}, refused: map[string]bool{}, told: map[string]bool{}}
}

func (r *roomSession) sessionCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.conns)
}

func (r *roomSession) lkRoom() *lksdk.Room {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.room
}

// run joins the room and stays until the room is over: the last
// participant left, the server ended the job or closed the room, or the
// agent stopped. Then it waits for its sessions' Close and leaves.
func (r *roomSession) run() {
	log := r.agent.opts.Log
	cb := lksdk.NewRoomCallback()
	cb.OnTrackPublished = r.trackPublished
	cb.OnTrackSubscribed = r.trackSubscribed
	cb.OnTrackUnpublished = func(pub *lksdk.RemoteTrackPublication, rp *lksdk.RemoteParticipant) {
		if pub.Kind() == lksdk.TrackKindAudio {
			r.participantGone(rp.Identity(), "unpublished its microphone")
		}
	}
	cb.OnParticipantDisconnected = func(rp *lksdk.RemoteParticipant) {
		r.participantGone(rp.Identity(), "left")
		if r.humans() == 0 {
			r.leave(fmt.Errorf("%w: the last participant left room %s", transports.ErrClientClosed, r.name))
		}
	}
	cb.OnDisconnectedWithReason = func(reason lksdk.DisconnectionReason) {
		err := fmt.Errorf("%w: disconnected from room %s: %s", transports.ErrConnectionLost, r.name, reason)
		if reason == lksdk.RoomClosed || reason == lksdk.LeaveRequested || reason == lksdk.ParticipantRemoved {
			err = fmt.Errorf("%w: room %s: %s", transports.ErrClientClosed, r.name, reason)
		}
		r.leave(err)
	}
	room, err := lksdk.ConnectToRoomWithToken(r.url, r.token, cb, lksdk.WithAutoSubscribe(false))
	if err != nil {
		log("livekit join failed", "room", r.name, "job", r.jobID, "error", err.Error())
		r.agent.jobEnded(r, fmt.Errorf("join room %s: %w", r.name, err))
		return
	}
	r.mu.Lock()
	r.room = room
	pending := r.pending
	r.pending = nil
	r.mu.Unlock()
	// What the callbacks had to say while the join was under way.
	for _, p := range pending {
		r.tell(p.identity, p.m)
	}
	log("livekit joined room", "room", r.name, "job", r.jobID)
	// Participants already there before the agent joined.
	for _, rp := range room.GetRemoteParticipants() {
		for _, tp := range rp.TrackPublications() {
			if pub, ok := tp.(*lksdk.RemoteTrackPublication); ok {
				r.trackPublished(pub, rp)
			}
		}
	}
	if r.humans() == 0 {
		// Explicit dispatch may come before anyone joins: wait for one.
		go r.leaveIfEmptyAfter(2 * time.Minute)
	}
	select {
	case <-r.left:
	case <-r.ctx.Done():
		r.leave(fmt.Errorf("%w: worker stopping", transports.ErrConnectionLost))
	}
	// Sessions end first (each Conn's Close unpublishes its track), then
	// the agent leaves the room.
	for {
		r.mu.Lock()
		n := len(r.conns)
		r.mu.Unlock()
		if n == 0 {
			break
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-r.agent.ctx.Done():
			time.Sleep(20 * time.Millisecond)
		}
	}
	room.Disconnect()
	r.mu.Lock()
	r.room = nil
	jobErr := r.leaveErr
	r.mu.Unlock()
	r.cancel()
	log("livekit left room", "room", r.name, "job", r.jobID, "why", fmt.Sprint(jobErr))
	r.agent.jobEnded(r, jobErr)
}

func (r *roomSession) leaveIfEmptyAfter(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		if r.humans() == 0 && r.sessionCount() == 0 {
			r.leave(fmt.Errorf("%w: nobody joined room %s within %s", transports.ErrClientClosed, r.name, d))
		}
	case <-r.left:
	}
}

// humans counts the remote participants that are not agents.
func (r *roomSession) humans() int {
	r.mu.Lock()
	room := r.room
	r.mu.Unlock()
	if room == nil {
		return 0
	}
	n := 0
	for _, rp := range room.GetRemoteParticipants() {
		if rp.Kind() != lksdk.ParticipantAgent {
			n++
		}
	}
	return n
}

// leave ends the room's sessions with cause and lets run leave the room.
func (r *roomSession) leave(cause error) {
	r.once.Do(func() {
		r.mu.Lock()
		r.leaving, r.leaveErr = true, cause
		conns := make([]*Conn, 0, len(r.conns))
		for _, c := range r.conns {
			conns = append(conns, c)
		}
		r.mu.Unlock()
		for _, c := range conns {
			c.endWith(cause, "")
		}
		close(r.left)
	})
}

// trackPublished subscribes to audio; video is not taken (the
// participant is told once).
func (r *roomSession) trackPublished(pub *lksdk.RemoteTrackPublication, rp *lksdk.RemoteParticipant) {
	if rp.Kind() == lksdk.ParticipantAgent {
		return
	}
	if pub.Kind() != lksdk.TrackKindAudio {
		r.mu.Lock()
		first := !r.told[rp.Identity()]
		r.told[rp.Identity()] = true
		r.mu.Unlock()
		r.agent.mu.Lock()
		r.agent.stats.VideoIgnored++
		r.agent.mu.Unlock()
		if first {
			r.tell(rp.Identity(), Message{Type: "notice", Reason: fmt.Sprintf("%s track %q ignored: the agent takes audio only", pub.Kind(), pub.Name())})
		}
		return
	}
	if err := pub.SetSubscribed(true); err != nil {
		r.agent.opts.Log("livekit subscribe", "room", r.name, "participant", rp.Identity(), "error", err.Error())
	}
}

// trackSubscribed opens the participant's session on its first audio
// track, up to MaxSessionsPerRoom.
func (r *roomSession) trackSubscribed(track *webrtc.TrackRemote, pub *lksdk.RemoteTrackPublication, rp *lksdk.RemoteParticipant) {
	if track.Kind() != webrtc.RTPCodecTypeAudio {
		return
	}
	id := rp.Identity()
	r.mu.Lock()
	if r.leaving || r.conns[id] != nil {
		r.mu.Unlock()
		return
	}
	if len(r.conns) >= r.agent.opts.MaxSessionsPerRoom {
		first := !r.refused[id]
		r.refused[id] = true
		r.mu.Unlock()
		r.agent.mu.Lock()
		r.agent.stats.RoomFull++
		r.agent.mu.Unlock()
		if first {
			r.tell(id, Message{Type: "error", Reason: fmt.Sprintf("%v: the agent serves at most %d participants of a room", errRoomFull, r.agent.opts.MaxSessionsPerRoom)})
		}
		return
	}
	c := newConn(r, id, track)
	r.conns[id] = c
	r.mu.Unlock()
	if err := c.start(); err != nil {
		r.agent.opts.Log("livekit session start", "room", r.name, "participant", id, "error", err.Error())
		r.tell(id, Message{Type: "error", Reason: "agent cannot start a session: " + err.Error()})
		r.mu.Lock()
		delete(r.conns, id)
		r.mu.Unlock()
		return
	}
	if !r.agent.deliver(c) {
		c.lostWith(fmt.Errorf("worker stopping"))
		c.Close("worker stopping")
	}
}

func (r *roomSession) participantGone(identity, how string) {
	r.mu.Lock()
	c := r.conns[identity]
	r.mu.Unlock()
	if c != nil {
		c.endWith(fmt.Errorf("%w: participant %s %s room %s", transports.ErrClientClosed, identity, how, r.name), "")
	}
}

// sessionEnded: a Conn's Close ran.
func (r *roomSession) sessionEnded(c *Conn) {
	r.mu.Lock()
	if r.conns[c.identity] == c {
		delete(r.conns, c.identity)
	}
	r.mu.Unlock()
}

// tell sends one message to one participant.
func (r *roomSession) tell(identity string, m Message) {
	m.SentUnixNano = time.Now().UnixNano()
	b, _ := json.Marshal(m)
	r.mu.Lock()
	room := r.room
	if room == nil {
		if len(r.pending) < 64 {
			r.pending = append(r.pending, pendingTell{identity, m})
		}
		r.mu.Unlock()
		return
	}
	r.mu.Unlock()
	_ = room.LocalParticipant.PublishDataPacket(lksdk.UserData(b), lksdk.WithDataPublishTopic(Topic),
		lksdk.WithDataPublishReliable(true), lksdk.WithDataPublishDestination([]string{identity}))
}

type pendingTell struct {
	identity string
	m        Message
}
