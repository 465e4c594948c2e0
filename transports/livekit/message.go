package livekit

import "github.com/rspp/rspp/transports"

// Topic is the data-message topic of the agent's session messages.
const Topic = "rspp"

// Message is one data message the agent sends a participant (JSON on
// Topic). Type is one of: ready (session bound), turn (State open,
// active, commit, abort; Reason, LatencyMs), transcript (Text, Final),
// reply (Text), fence (Turn, Reason: nothing more of the turn follows),
// audio_start (Turn: the next audio on the track is this turn's),
// notice (Reason: input the agent ignores, e.g. a video track), error
// (Reason: the session ends, or no session was opened).
type Message = transports.Message

// AgentTrackName is the name of the track the agent publishes for the
// participant identity.
func AgentTrackName(identity string) string { return "rspp-agent:" + identity }
