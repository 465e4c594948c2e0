package transports

import "github.com/rspp/rspp/kernel/eventabi"

// Message is a control message a live transport sends its client: the
// JSON text frames of the WebSocket protocol (websocket/PROTOCOL.md) and
// the LiveKit transport's data messages carry the same fields. Fields a
// transport does not use stay empty and off the wire.
type Message struct {
	Type      string `json:"type"`
	Session   string `json:"session,omitempty"`
	Protocol  int    `json:"protocol,omitempty"` // WebSocket ready only
	Turn      string `json:"turn,omitempty"`
	State     string `json:"state,omitempty"`
	Reason    string `json:"reason,omitempty"`
	LatencyMs *int64 `json:"latency_ms,omitempty"`
	Text      string `json:"text,omitempty"`
	Final     *bool  `json:"final,omitempty"`
	// SentUnixNano is when the agent sent it (LiveKit only: wall clock of
	// the agent's machine; the tests run both ends on one clock).
	SentUnixNano int64 `json:"sent_unix_nano,omitempty"`
}

// NoticeMessage is the message a Notice becomes; false for a kind the
// client is not told of.
func NoticeMessage(n Notice) (Message, bool) {
	m := Message{Type: n.Kind, Turn: n.Turn}
	switch n.Kind {
	case NoticeTurn:
		m.State, m.Reason = n.State, n.Reason
		if n.State == "commit" || n.State == "abort" {
			lat := n.LatencyMs
			m.LatencyMs = &lat
		}
	case NoticeTranscript:
		final := n.Final
		m.Text, m.Final = n.Text, &final
	case NoticeReply:
		m.Text = n.Text
	default:
		return Message{}, false
	}
	return m, true
}

// DropTurn removes turn's events from q in place (a fence flushing what a
// connection has queued) and says how many it removed.
func DropTurn(q []eventabi.Event, turn string) ([]eventabi.Event, int) {
	kept := q[:0]
	for _, ev := range q {
		if ev.TurnID != turn {
			kept = append(kept, ev)
		}
	}
	clear(q[len(kept):]) // let the dropped frames go
	return kept, len(q) - len(kept)
}
