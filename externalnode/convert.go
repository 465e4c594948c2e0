package externalnode

import (
	"github.com/rspp/rspp/kernel/eventabi"
	rsppv1 "github.com/rspp/rspp/proto/rspp/v1"
)

// newWireFrame is a new EVENT message of invocation id carrying ev: one
// allocation for the frame, its event and its payload.
func newWireFrame(id string, ev *eventabi.Event) *rsppv1.DataFrame {
	return new(wireEvent).frame(id, ev)
}

// wireEvent is an EVENT message with room for any payload. The host's
// writer reuses one for every input frame it sends (gRPC marshals a
// message before Send returns, so the next frame may overwrite it; only
// the writer goroutine uses it).
type wireEvent struct {
	msg   rsppv1.DataFrame
	event rsppv1.Event
	audio rsppv1.AudioFrame
	text  rsppv1.TextPayload
	ctrl  rsppv1.ControlPayload
	// The oneof wrappers point at the payloads above.
	audioW rsppv1.Event_Audio
	textW  rsppv1.Event_Text
	ctrlW  rsppv1.Event_Control
}

// frame fills the reused message with ev, an input of invocation id.
func (w *wireEvent) frame(id string, ev *eventabi.Event) *rsppv1.DataFrame {
	f := &w.msg
	f.Kind, f.InvocationId, f.Event = rsppv1.DataFrame_KIND_EVENT, id, w.fill(ev)
	return f
}

// fill maps ev into w's event and payload and returns the event.
func (w *wireEvent) fill(ev *eventabi.Event) *rsppv1.Event {
	e := &w.event
	e.EventId, e.EventType, e.Lane = ev.ID, string(ev.Type), rsppv1.Lane(ev.Lane)
	e.SessionId, e.TurnId, e.NodeId, e.InvocationId = ev.SessionID, ev.TurnID, ev.NodeID, ev.InvocationID
	e.SchemaVersion, e.RuntimeSequence, e.AuthorityEpoch = ev.SchemaVersion, ev.Sequence, ev.Epoch
	e.MonoNs, e.WallUnixNs, e.MediaNs = ev.MonoNanos, ev.WallNanos, ev.MediaNanos
	switch {
	case ev.Audio != nil:
		w.audio.Pcm, w.audio.SampleRate, w.audio.Channels = ev.Audio.PCM, ev.Audio.SampleRate, ev.Audio.Channels
		w.audioW.Audio = &w.audio
		e.Payload = &w.audioW
	case ev.Text != nil:
		w.text.Text, w.text.Final = ev.Text.Text, ev.Text.Final
		w.textW.Text = &w.text
		e.Payload = &w.textW
	case ev.Control != nil:
		w.ctrl.Signal, w.ctrl.Scope, w.ctrl.Reason = ev.Control.Signal, ev.Control.Scope, ev.Control.Reason
		w.ctrlW.Control = &w.ctrl
		e.Payload = &w.ctrlW
	default:
		e.Payload = nil
	}
	return e
}

// fromWire maps a wire event to the domain form. A nil event maps to the
// zero event, which validation rejects.
func fromWire(w *rsppv1.Event) eventabi.Event {
	if w == nil {
		return eventabi.Event{}
	}
	ev := eventabi.Event{
		ID:            w.EventId,
		Type:          eventabi.Type(w.EventType),
		Lane:          eventabi.Lane(w.Lane),
		SessionID:     w.SessionId,
		TurnID:        w.TurnId,
		NodeID:        w.NodeId,
		InvocationID:  w.InvocationId,
		SchemaVersion: w.SchemaVersion,
		Sequence:      w.RuntimeSequence,
		Epoch:         w.AuthorityEpoch,
		MonoNanos:     w.MonoNs,
		WallNanos:     w.WallUnixNs,
		MediaNanos:    w.MediaNs,
	}
	switch p := w.Payload.(type) {
	case *rsppv1.Event_Audio:
		if p.Audio != nil {
			ev.Audio = &eventabi.Audio{PCM: p.Audio.Pcm, SampleRate: p.Audio.SampleRate, Channels: p.Audio.Channels}
		}
	case *rsppv1.Event_Text:
		if p.Text != nil {
			ev.Text = &eventabi.Text{Text: p.Text.Text, Final: p.Text.Final}
		}
	case *rsppv1.Event_Control:
		if p.Control != nil {
			ev.Control = &eventabi.Control{Signal: p.Control.Signal, Scope: p.Control.Scope, Reason: p.Control.Reason}
		}
	}
	return ev
}
