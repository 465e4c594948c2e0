package wsload

import (
	"encoding/json"
	"fmt"
)

// The wire protocol of transports/websocket/PROTOCOL.md (version 1), as far
// as a client needs it. Kept here rather than imported so the load client
// checks the server against the document, not against the server's own
// types.
const (
	// ProtocolVersion is the version this client speaks.
	ProtocolVersion = 1
	// FrameBytes is one binary frame: 20 ms of 16 kHz mono s16le.
	FrameBytes = 640
	// SampleRate and Channels are what `start` announces.
	SampleRate = 16000
	Channels   = 1
)

// Message is any text frame, both ways; only the fields of its type are set.
type Message struct {
	Type string `json:"type"`

	// start
	SampleRate int    `json:"sample_rate,omitempty"`
	Channels   int    `json:"channels,omitempty"`
	Tenant     string `json:"tenant,omitempty"`

	// ready
	Session  string `json:"session,omitempty"`
	Protocol int    `json:"protocol,omitempty"`

	// turn, transcript, reply, audio_start, fence, playback
	Turn      string  `json:"turn,omitempty"`
	State     string  `json:"state,omitempty"`
	Reason    string  `json:"reason,omitempty"`
	LatencyMs float64 `json:"latency_ms,omitempty"`
	Text      string  `json:"text,omitempty"`
	Final     bool    `json:"final,omitempty"`
	Event     string  `json:"event,omitempty"`
	PlayedMs  float64 `json:"played_ms,omitempty"`
}

// Server message types.
const (
	TypeReady      = "ready"
	TypeTurn       = "turn"
	TypeTranscript = "transcript"
	TypeReply      = "reply"
	TypeAudioStart = "audio_start"
	TypeFence      = "fence"
	TypeError      = "error"
)

// Client message types.
const (
	TypeStart    = "start"
	TypePlayback = "playback"
	TypeStop     = "stop"
)

// Turn states of a `turn` message.
const (
	StateOpen   = "open"
	StateActive = "active"
	StateCommit = "commit"
	StateAbort  = "abort"
)

// ProtocolError is a server message this client cannot make sense of.
type ProtocolError struct {
	What string // e.g. "text frame", "turn message"
	Err  error
}

func (e *ProtocolError) Error() string {
	if e.Err == nil {
		return "protocol: " + e.What
	}
	return fmt.Sprintf("protocol: %s: %v", e.What, e.Err)
}

func (e *ProtocolError) Unwrap() error { return e.Err }

// decodeServer parses one server text frame and checks that the fields its
// type needs are there.
func decodeServer(b []byte) (Message, error) {
	var m Message
	if err := json.Unmarshal(b, &m); err != nil {
		return m, &ProtocolError{What: fmt.Sprintf("text frame %.80q", b), Err: err}
	}
	switch m.Type {
	case TypeReady:
		if m.Session == "" {
			return m, &ProtocolError{What: "ready without session"}
		}
		if m.Protocol != ProtocolVersion {
			return m, &ProtocolError{What: fmt.Sprintf("ready with protocol %d, want %d", m.Protocol, ProtocolVersion)}
		}
	case TypeTurn:
		switch m.State {
		case StateOpen, StateActive, StateCommit, StateAbort:
		default:
			return m, &ProtocolError{What: fmt.Sprintf("turn message with state %q", m.State)}
		}
		fallthrough
	case TypeTranscript, TypeReply, TypeAudioStart, TypeFence:
		if m.Turn == "" {
			return m, &ProtocolError{What: m.Type + " message without turn"}
		}
	case TypeError:
	default:
		return m, &ProtocolError{What: fmt.Sprintf("unknown message type %q", m.Type)}
	}
	return m, nil
}
