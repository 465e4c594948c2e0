package kernel

import (
	"fmt"

	"github.com/rspp/rspp/kernel/eventabi"
)

// Ingest takes one transport event: audio frames, speech start/end (when
// the transport does VAD), cancel and session close. Malformed input gets a
// typed error and is counted; it never harms the session.
func (s *Session) Ingest(ev eventabi.Event) error {
	if s.closed {
		return ErrSessionClosed
	}
	s.now = s.cfg.Clock.Now()
	pass, err := s.checkIngress(&ev)
	if err != nil || !pass {
		return err
	}
	s.ingressAuthority(&ev)
	switch ev.Type {
	case eventabi.TypeAudioFrame:
		return s.ingestAudio(ev)
	case eventabi.TypeSpeechStart:
		if s.vad == nil {
			s.speechStart(nil)
		}
	case eventabi.TypeSpeechEnd:
		if s.vad == nil {
			s.speechEnd()
		}
	case eventabi.TypeSessionClose:
		reason := "client_close"
		if ev.Control != nil && ev.Control.Reason != "" {
			reason = ev.Control.Reason
		}
		s.Close(reason)
	case eventabi.TypeOutputAccepted, eventabi.TypePlaybackStarted:
		return s.outputSignal(ev)
	case eventabi.TypePlaybackDone:
		return s.playbackDone(ev)
	case eventabi.TypeCancel:
		return s.Cancel(ev.Control.Scope, cancelTarget(ev), ev.Control.Reason)
	default:
		if t := s.turn; t != nil && t.phase == phaseListening {
			return s.deliverIngress(t, ev)
		}
	}
	return nil
}

func cancelTarget(ev eventabi.Event) string {
	switch ev.Control.Scope {
	case "turn":
		return ev.TurnID
	case "node":
		return ev.NodeID
	case "invocation":
		return ev.InvocationID
	}
	return ""
}

func (s *Session) ingestAudio(ev eventabi.Event) error {
	if s.vad != nil {
		wasSpeaking := s.vad.state == vadSpeaking
		r := s.vad.push(ev)
		switch {
		case r.start:
			s.speechStart(r.preRoll)
			return nil
		case !wasSpeaking:
			return nil
		}
		err := s.userAudio(ev)
		if r.end {
			s.speechEnd()
		}
		return err
	}
	if !s.speaking {
		return nil
	}
	return s.userAudio(ev)
}

// userAudio is a frame of ongoing user speech.
func (s *Session) userAudio(ev eventabi.Event) error {
	if p := s.pending; p != nil {
		p.hold(ev, s)
		return nil
	}
	if t := s.turn; t != nil && t.phase == phaseListening {
		return s.deliverIngress(t, ev)
	}
	return nil
}

// Cancel cancels by scope: "session" closes the session, "turn" aborts the
// active turn (target "" or its id), "node" and "invocation" cancel one
// invocation of the active turn, which fails it with ErrCancelled under the
// node's policy. Unknown targets return ErrUnknownInvocation.
func (s *Session) Cancel(scope, target, reason string) error {
	if s.closed {
		return ErrSessionClosed
	}
	s.now = s.cfg.Clock.Now()
	if reason == "" {
		reason = "cancel"
	}
	switch scope {
	case "session":
		s.Close(reason)
		return nil
	case "turn":
		if t := s.turn; t != nil && (target == "" || target == t.id) {
			s.cancelTurn(t, reason)
		}
		return nil
	case "node", "invocation":
		var inv *invocation
		if t := s.turn; t != nil {
			if scope == "node" {
				inv = t.byNode[target]
			} else if i := s.invs[target]; i != nil && i.t == t {
				inv = i
			}
		}
		if inv == nil || inv.status != invOpen {
			return fmt.Errorf("%w: %s %q", ErrUnknownInvocation, scope, target)
		}
		s.control(CancelInvocation{InvocationID: inv.ref.InvocationID, Reason: reason})
		s.fail(inv, fmt.Errorf("%w: %s", ErrCancelled, reason), "")
		return nil
	}
	return fmt.Errorf("%w: cancel scope %q", eventabi.ErrInvalidEvent, scope)
}
