package externalnode

import (
	"github.com/rspp/rspp/kernel/eventabi"
	rsppv1 "github.com/rspp/rspp/proto/rspp/v1"
)

// toWire maps a domain event to its wire form.
func toWire(ev *eventabi.Event) *rsppv1.Event {
	w := &rsppv1.Event{
		EventId:         ev.ID,
		EventType:       string(ev.Type),
		Lane:            rsppv1.Lane(ev.Lane),
		SessionId:       ev.SessionID,
		TurnId:          ev.TurnID,
		NodeId:          ev.NodeID,
		InvocationId:    ev.InvocationID,
		SchemaVersion:   ev.SchemaVersion,
		RuntimeSequence: ev.Sequence,
		AuthorityEpoch:  ev.Epoch,
		MonoNs:          ev.MonoNanos,
		WallUnixNs:      ev.WallNanos,
		MediaNs:         ev.MediaNanos,
	}
	switch {
	case ev.Audio != nil:
		w.Payload = &rsppv1.Event_Audio{Audio: &rsppv1.AudioFrame{Pcm: ev.Audio.PCM, SampleRate: ev.Audio.SampleRate, Channels: ev.Audio.Channels}}
	case ev.Text != nil:
		w.Payload = &rsppv1.Event_Text{Text: &rsppv1.TextPayload{Text: ev.Text.Text, Final: ev.Text.Final}}
	case ev.Control != nil:
		w.Payload = &rsppv1.Event_Control{Control: &rsppv1.ControlPayload{Signal: ev.Control.Signal, Scope: ev.Control.Scope, Reason: ev.Control.Reason}}
	}
	return w
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
