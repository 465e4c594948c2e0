package eventabi

// Limits bounds what one event may carry. The gateway rejects anything larger
// with ErrOversized so that a misbehaving producer cannot make the runtime
// allocate without bound.
type Limits struct {
	MaxPCMBytes  int // audio payload bytes
	MaxTextBytes int // text payload bytes
	MaxIDBytes   int // each id/type/signal string
}

// DefaultLimits allow ~10 s of 48 kHz stereo audio per frame and 64 KiB of text.
var DefaultLimits = Limits{MaxPCMBytes: 2 << 20, MaxTextBytes: 64 << 10, MaxIDBytes: 256}

// Known reports whether t is one of the types the runtime itself defines.
func Known(t Type) bool {
	switch t {
	case TypeAudioFrame, TypeTranscriptPartial, TypeTranscriptFinal, TypeTextDelta, TypeTextFinal,
		TypeSpeechStart, TypeSpeechEnd, TypeCancel, TypeSessionClose, TypeMetric,
		TypeOutputAccepted, TypePlaybackStarted, TypePlaybackDone:
		return true
	}
	return false
}

// Normalize fills the defaults a producer may leave out: a zero schema
// version means the current one, an unspecified lane means the type's
// default lane. It never changes a field that was set.
func Normalize(ev *Event) {
	if ev.SchemaVersion == 0 {
		ev.SchemaVersion = SchemaVersion
	}
	if ev.Lane == LaneUnspecified {
		ev.Lane = DefaultLane(ev.Type)
	}
}

// Validate checks the envelope and its payload against the ABI. It accepts
// unknown (third-party) types as long as they are well formed: what to do
// with them is the caller's policy. Errors are *ValidationError and match
// the package sentinels with errors.Is.
func Validate(ev *Event, lim Limits) error {
	if lim == (Limits{}) {
		lim = DefaultLimits
	}
	bad := func(kind error, field, msg string) error {
		return &ValidationError{Kind: kind, Field: field, Type: ev.Type, Msg: msg}
	}
	if ev.Type == "" {
		return bad(ErrInvalidEvent, "type", "empty type")
	}
	if !validTypeName(string(ev.Type)) || len(ev.Type) > lim.MaxIDBytes {
		return bad(ErrInvalidEvent, "type", "type must be lowercase [a-z0-9._-]")
	}
	if ev.SchemaVersion != SchemaVersion {
		return bad(ErrSchemaVersion, "schema_version", "want the runtime's schema version")
	}
	if ev.Lane > LaneTelemetry || ev.Lane == LaneUnspecified {
		return bad(ErrInvalidEvent, "lane", "lane out of range")
	}
	if ev.Lane != DefaultLane(ev.Type) {
		// The type's prefix decides the lane ("control.", "telemetry.", else
		// data), so no producer can buy priority by relabelling its events.
		return bad(ErrInvalidEvent, "lane", "lane does not match the type's prefix")
	}
	ids := [...]struct{ name, v string }{{"id", ev.ID}, {"session_id", ev.SessionID}, {"turn_id", ev.TurnID}, {"node_id", ev.NodeID}, {"invocation_id", ev.InvocationID}}
	for _, id := range ids {
		if len(id.v) > lim.MaxIDBytes {
			return bad(ErrOversized, id.name, "identifier too long")
		}
	}
	payloads := 0
	if ev.Audio != nil {
		payloads++
	}
	if ev.Text != nil {
		payloads++
	}
	if ev.Control != nil {
		payloads++
	}
	if payloads > 1 {
		return bad(ErrPayloadMismatch, "payload", "more than one payload set")
	}
	if ev.Audio != nil {
		if err := validateAudio(ev, lim, bad); err != nil {
			return err
		}
	}
	if ev.Text != nil && len(ev.Text.Text) > lim.MaxTextBytes {
		return bad(ErrOversized, "text.text", "text too long")
	}
	if ev.Control != nil {
		c := ev.Control
		if len(c.Signal) > lim.MaxIDBytes || len(c.Scope) > lim.MaxIDBytes || len(c.Reason) > lim.MaxTextBytes {
			return bad(ErrOversized, "control", "control field too long")
		}
	}
	return validateKnownPayload(ev, bad)
}

type badFunc func(kind error, field, msg string) error

func validateAudio(ev *Event, lim Limits, bad badFunc) error {
	a := ev.Audio
	switch {
	case len(a.PCM) > lim.MaxPCMBytes:
		return bad(ErrOversized, "audio.pcm", "audio frame too large")
	case a.SampleRate == 0 || a.SampleRate > 384000:
		return bad(ErrInvalidEvent, "audio.sample_rate", "sample rate out of range")
	case a.Channels == 0 || a.Channels > 8:
		return bad(ErrInvalidEvent, "audio.channels", "channel count out of range")
	case len(a.PCM) == 0 || len(a.PCM)%(2*int(a.Channels)) != 0:
		return bad(ErrInvalidEvent, "audio.pcm", "pcm must hold whole s16le sample frames")
	}
	return nil
}

func validateKnownPayload(ev *Event, bad badFunc) error {
	switch ev.Type {
	case TypeAudioFrame:
		if ev.Audio == nil {
			return bad(ErrPayloadMismatch, "audio", "audio.frame needs an audio payload")
		}
	case TypeTranscriptPartial, TypeTranscriptFinal, TypeTextDelta, TypeTextFinal:
		if ev.Text == nil {
			return bad(ErrPayloadMismatch, "text", "text event needs a text payload")
		}
	case TypeSpeechStart, TypeSpeechEnd, TypeSessionClose, TypeMetric, TypeOutputAccepted, TypePlaybackStarted, TypePlaybackDone:
		if ev.Audio != nil || ev.Text != nil {
			return bad(ErrPayloadMismatch, "payload", "control/telemetry event carries media")
		}
	case TypeCancel:
		if ev.Control == nil {
			return bad(ErrPayloadMismatch, "control", "cancel needs a control payload")
		}
		switch ev.Control.Scope {
		case "session", "turn", "node", "invocation":
		default:
			return bad(ErrInvalidEvent, "control.scope", "unknown cancel scope")
		}
	}
	return nil
}

func validTypeName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
