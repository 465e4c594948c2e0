// Package eventabi holds the runtime's Event ABI: the one envelope every
// piece of traffic travels in (audio, text, transcripts, control), inside the
// kernel and across the plugin boundary. It owns the domain types and their
// validation; it must never do I/O or know about gRPC (the wire mapping lives
// in externalnode).
//
// It imports nothing of this module.
package eventabi

import "fmt"

// SchemaVersion is the Event ABI version this runtime speaks.
const SchemaVersion uint32 = 1

// Lane is the scheduling class of an event. Control always preempts Data;
// Telemetry is best effort and never blocks anything.
type Lane uint8

const (
	LaneUnspecified Lane = iota
	LaneControl
	LaneData
	LaneTelemetry
)

func (l Lane) String() string {
	switch l {
	case LaneControl:
		return "control"
	case LaneData:
		return "data"
	case LaneTelemetry:
		return "telemetry"
	default:
		return "unspecified"
	}
}

// Type names what an event is. Types are open strings so that third-party
// nodes can define their own; the ones below are the ones the runtime knows.
type Type string

const (
	// Data lane.
	TypeAudioFrame        Type = "audio.frame"        // Audio payload, 20 ms PCM s16le unless declared otherwise
	TypeTranscriptPartial Type = "transcript.partial" // Text payload
	TypeTranscriptFinal   Type = "transcript.final"   // Text payload
	TypeTextDelta         Type = "text.delta"         // Text payload: one streamed token/chunk
	TypeTextFinal         Type = "text.final"         // Text payload: the whole text, after its deltas

	// Control lane.
	TypeSpeechStart  Type = "control.speech_start" // user started speaking (VAD or transport)
	TypeSpeechEnd    Type = "control.speech_end"   // user stopped speaking
	TypeCancel       Type = "control.cancel"       // Control payload names scope + reason
	TypeSessionClose Type = "control.session_close"
	// Transport signals about agent output of a turn (TurnID set). After
	// the turn's egress fence they are invalid and rejected.
	TypeOutputAccepted  Type = "control.output_accepted"  // transport took the turn's first output
	TypePlaybackStarted Type = "control.playback_started" // the user starts hearing it
	// TypePlaybackDone: a live transport played the last of the turn's
	// audio (after the kernel's EgressDone); the turn may commit.
	TypePlaybackDone Type = "control.playback_done"

	// Telemetry lane.
	TypeMetric Type = "telemetry.metric"
)

// Audio is a PCM payload. PCM is signed 16-bit little-endian, interleaved.
type Audio struct {
	PCM        []byte
	SampleRate uint32
	Channels   uint32
}

// Duration of the frame in nanoseconds (0 when the format is incomplete).
func (a *Audio) DurationNanos() int64 {
	if a == nil || a.SampleRate == 0 || a.Channels == 0 {
		return 0
	}
	samples := int64(len(a.PCM)) / 2 / int64(a.Channels)
	return samples * 1e9 / int64(a.SampleRate)
}

// Text is a text payload: a token delta, a transcript or a whole reply.
type Text struct {
	Text  string
	Final bool
}

// Control is a control payload.
type Control struct {
	Signal string // free-form signal name for custom control events
	Scope  string // cancel scope: "session", "turn", "node", "invocation"
	Reason string
}

// Event is the envelope. Correlation fields (SessionID, TurnID, NodeID,
// InvocationID, Sequence) are filled by the kernel on every event it emits.
type Event struct {
	ID            string
	Type          Type
	Lane          Lane
	SessionID     string
	TurnID        string
	NodeID        string
	InvocationID  string
	SchemaVersion uint32
	Sequence      uint64 // runtime_sequence: per session, strictly increasing
	Epoch         uint64 // authority (lease) epoch the event was produced under

	MonoNanos  int64 // runtime monotonic time
	WallNanos  int64 // wall clock, unix nanoseconds
	MediaNanos int64 // media time of the payload start, when it carries media

	// Exactly one payload may be set, matching Type.
	Audio   *Audio
	Text    *Text
	Control *Control
}

// DefaultLane is the lane an event of type t travels on when the producer did
// not say.
func DefaultLane(t Type) Lane {
	switch {
	case len(t) >= 8 && t[:8] == "control.":
		return LaneControl
	case len(t) >= 10 && t[:10] == "telemetry.":
		return LaneTelemetry
	default:
		return LaneData
	}
}

// String is a short description for logs.
func (e *Event) String() string {
	return fmt.Sprintf("%s[%s] session=%s turn=%s node=%s inv=%s seq=%d", e.Type, e.Lane, e.SessionID, e.TurnID, e.NodeID, e.InvocationID, e.Sequence)
}
