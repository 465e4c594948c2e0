package livekit

// Topic is the data-message topic of the agent's session messages.
const Topic = "rspp"

// Message is one data message the agent sends a participant (JSON on
// Topic). Type is one of: ready (session bound), turn (State open,
// active, commit, abort; Reason, LatencyMs), transcript (Text, Final),
// reply (Text), fence (Turn, Reason: nothing more of the turn follows),
// audio_start (Turn: the next audio on the track is this turn's),
// notice (Reason: input the agent ignores, e.g. a video track), error
// (Reason: the session ends, or no session was opened).
type Message struct {
	Type      string `json:"type"`
	Session   string `json:"session,omitempty"`
	Turn      string `json:"turn,omitempty"`
	State     string `json:"state,omitempty"`
	Reason    string `json:"reason,omitempty"`
	LatencyMs *int64 `json:"latency_ms,omitempty"`
	Text      string `json:"text,omitempty"`
	Final     *bool  `json:"final,omitempty"`
	// SentUnixNano is when the agent sent it (wall clock of the agent's
	// machine; the tests run both ends on one clock).
	SentUnixNano int64 `json:"sent_unix_nano,omitempty"`
}

// AgentTrackName is the name of the track the agent publishes for the
// participant identity.
func AgentTrackName(identity string) string { return "rspp-agent:" + identity }
