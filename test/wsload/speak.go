package wsload

import (
	"context"
	"fmt"
	"time"

	"github.com/coder/websocket"
)

// writeTimeout bounds one write: a server that stops reading loses the
// session rather than stalling the client's clock.
const writeTimeout = 5 * time.Second

// sender writes the client's audio on a real-time schedule, one frame per
// 20 ms, like a microphone: silence between utterances too. Control
// messages queued by the reader go out while it waits for a frame's slot.
type sender struct {
	c       *client
	ctx     context.Context
	next    time.Time
	timer   *time.Timer
	silence []byte
}

func newSender(ctx context.Context, c *client) *sender {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &sender{c: c, ctx: ctx, next: c.now(), timer: t, silence: make([]byte, FrameBytes)}
}

// send writes f in its slot and returns when it was sent.
func (s *sender) send(f []byte) (time.Time, error) {
	for {
		wait := s.next.Sub(s.c.now())
		if wait <= 0 {
			break
		}
		s.timer.Reset(wait)
		select {
		case <-s.ctx.Done():
			s.timer.Stop()
			return time.Time{}, s.ctx.Err()
		case m := <-s.c.ctrl:
			s.timer.Stop()
			if err := s.write(websocket.MessageText, m); err != nil {
				return time.Time{}, err
			}
		case <-s.timer.C:
		}
	}
	at := s.c.now()
	if err := s.write(websocket.MessageBinary, f); err != nil {
		return time.Time{}, err
	}
	s.next = s.next.Add(FrameDuration)
	// A client descheduled for long does not burst to catch up: a
	// microphone would have lost that audio too.
	if now := s.c.now(); now.Sub(s.next) > 10*FrameDuration {
		s.next = now
	}
	return at, nil
}

func (s *sender) write(typ websocket.MessageType, v any) error {
	ctx, cancel := context.WithTimeout(s.ctx, writeTimeout)
	defer cancel()
	if typ == websocket.MessageBinary {
		if err := s.c.conn.Write(ctx, typ, v.([]byte)); err != nil {
			return fmt.Errorf("connection lost while sending audio: %w", err)
		}
		return nil
	}
	if err := s.c.writeJSON(ctx, v.(Message)); err != nil {
		return fmt.Errorf("connection lost while sending %s: %w", v.(Message).Type, err)
	}
	return nil
}

// idleUntil sends silence until cond holds (checked, under the client's
// lock, before every frame) or until deadline; it reports whether cond
// held.
func (s *sender) idleUntil(deadline time.Time, cond func(now time.Time) bool) (bool, error) {
	for {
		now := s.c.now()
		s.c.mu.Lock()
		ok := cond != nil && cond(now)
		s.c.mu.Unlock()
		if ok {
			return true, nil
		}
		if !now.Before(deadline) {
			return false, nil
		}
		if _, err := s.send(s.silence); err != nil {
			return false, err
		}
	}
}

// replyEnded: nothing more of t's audio will come (mu held).
func replyEnded(t *Turn, now time.Time) bool {
	switch {
	case t.Fenced, t.Aborts > 0:
		return true
	case t.Frames > 0:
		return now.Sub(t.LastFrame) >= replyQuiet
	case t.Commits > 0:
		// Committed without audio (yet): give the playout a moment.
		return now.Sub(t.terminalSeen) >= time.Second
	}
	return false
}

// speak is the script: utterances in real time, listening between them,
// every BargeInEvery-th one over the agent's audio; then drain and stop.
func (c *client) speak(ctx context.Context) error {
	s := newSender(ctx, c)
	defer s.timer.Stop()
	end := c.now().Add(c.cfg.Duration)
	bargeInto := "" // the turn the next utterance is spoken over
	meantBargeIn := false
	for i := 0; ; i++ {
		u := c.cfg.Utterances[(c.cfg.First+i)%len(c.cfg.Utterances)]
		if c.now().Add(time.Duration(len(u.Frames)) * FrameDuration).After(end) {
			break
		}
		c.mu.Lock()
		idx := len(c.res.Utterances)
		c.res.Utterances = append(c.res.Utterances, Spoken{Name: u.Name, BargeIn: bargeInto != "", BargedTurn: bargeInto,
			Late: meantBargeIn && bargeInto == ""})
		c.waiting = idx
		c.mu.Unlock()
		for k, f := range u.Frames {
			at, err := s.send(f)
			if err != nil {
				return err
			}
			c.mu.Lock()
			if k == u.FirstVoiced {
				c.res.Utterances[idx].SpeechStart = at
			}
			if k == u.LastVoiced {
				c.res.Utterances[idx].SpeechEnd = at
			}
			c.mu.Unlock()
		}
		meantBargeIn = c.cfg.BargeInEvery >= 2 && (i+2)%c.cfg.BargeInEvery == 0
		bargeInto = ""

		var t *Turn
		opened, err := s.idleUntil(c.now().Add(c.cfg.ReplyTimeout), func(time.Time) bool {
			if id := c.res.Utterances[idx].Turn; id != "" {
				t = c.byID[id]
				return true
			}
			return false
		})
		if err != nil {
			return err
		}
		if !opened {
			c.mu.Lock()
			if c.waiting == idx {
				c.waiting = -1
			}
			c.mu.Unlock()
			continue
		}
		if meantBargeIn {
			// Speak again once the reply has played for BargeInAfter,
			// while its audio is still arriving.
			var playing bool
			_, err := s.idleUntil(c.now().Add(c.cfg.ReplyTimeout), func(now time.Time) bool {
				if replyEnded(t, now) {
					return true
				}
				playing = t.Frames > 0 && now.Sub(t.FirstFrame) >= c.cfg.BargeInAfter
				return playing
			})
			if err != nil {
				return err
			}
			if playing {
				bargeInto = t.ID
			}
			continue
		}
		if _, err := s.idleUntil(c.now().Add(c.cfg.ReplyTimeout), func(now time.Time) bool { return replyEnded(t, now) }); err != nil {
			return err
		}
		c.mu.Lock()
		played := t.Frames
		fenced := t.Fenced
		c.mu.Unlock()
		if played > 0 && !fenced {
			c.sendCtrl(Message{Type: TypePlayback, Turn: t.ID, Event: "done", PlayedMs: float64(played) * float64(FrameDuration/time.Millisecond)})
		}
		if _, err := s.idleUntil(c.now().Add(c.cfg.Gap), nil); err != nil {
			return err
		}
	}
	// Drain: every turn ends and its audio stops before the client stops.
	if _, err := s.idleUntil(c.now().Add(c.cfg.DrainTimeout), c.drained); err != nil {
		return err
	}
	c.mu.Lock()
	c.stopped = true
	c.mu.Unlock()
	return s.write(websocket.MessageText, Message{Type: TypeStop})
}

// drained: no utterance waits for its turn, every turn has a terminal and
// no audio is arriving (mu held).
func (c *client) drained(now time.Time) bool {
	if c.waiting >= 0 {
		return false
	}
	for _, t := range c.res.Turns {
		if t.Terminals() == 0 || (t.Frames > 0 && !t.Fenced && now.Sub(t.LastFrame) < replyQuiet) {
			return false
		}
	}
	return true
}
