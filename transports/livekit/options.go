package livekit

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Defaults of Options.
const (
	DefaultAgentName          = "rspp"
	DefaultMaxSessions        = 50
	DefaultMaxSessionsPerRoom = 4
	DefaultSendQueue          = 50 // frames (1 s): the playout hands them over at real time
	DefaultLoadInterval       = 2 * time.Second
)

// Options configure an Agent.
type Options struct {
	// URL of the LiveKit server (ws:// or wss://, or http(s)://).
	URL string
	// APIKey and APISecret sign the worker's token. They are never
	// printed: errors name the key, not the secret.
	APIKey, APISecret string
	// AgentName is the name explicit dispatches ask for
	// (DefaultAgentName if empty).
	AgentName string
	// Version is reported at registration.
	Version string
	// MaxSessions bounds this worker's sessions (DefaultMaxSessions); it
	// rejects job offers once its load says it is full.
	MaxSessions int
	// MaxSessionsPerRoom bounds the participants of one room that get a
	// session (DefaultMaxSessionsPerRoom); later ones are told the room
	// is full.
	MaxSessionsPerRoom int
	// SendQueue bounds each session's queued agent frames.
	SendQueue int
	// OpusBinary is the rspp-opus helper ("" : opuscodec.FindBinary).
	OpusBinary string
	// Tenant is the sessions' tenant.
	Tenant string
	// LoadInterval is how often the load is reported (DefaultLoadInterval).
	LoadInterval time.Duration
	// Load, if set, is the worker's load in [0,1] from the runtime's own
	// admission figures; nil: sessions / MaxSessions.
	Load func() float32
	// Log, if set, receives one line per event worth an operator's eye.
	Log func(msg string, kv ...any)
}

// ErrConfig is a bad Options value.
var ErrConfig = errors.New("livekit: bad config")

func (o *Options) check() error {
	if o.URL == "" {
		return fmt.Errorf("%w: no server URL", ErrConfig)
	}
	u, err := url.Parse(o.URL)
	if err != nil {
		return fmt.Errorf("%w: server URL %q: %v", ErrConfig, o.URL, err)
	}
	switch u.Scheme {
	case "ws", "wss", "http", "https":
	default:
		return fmt.Errorf("%w: server URL %q: scheme %q, want ws, wss, http or https", ErrConfig, o.URL, u.Scheme)
	}
	if o.APIKey == "" || o.APISecret == "" {
		return fmt.Errorf("%w: API key and secret are required (LIVEKIT_API_KEY, LIVEKIT_API_SECRET)", ErrConfig)
	}
	if o.AgentName == "" {
		o.AgentName = DefaultAgentName
	}
	if o.MaxSessions <= 0 {
		o.MaxSessions = DefaultMaxSessions
	}
	if o.MaxSessionsPerRoom <= 0 {
		o.MaxSessionsPerRoom = DefaultMaxSessionsPerRoom
	}
	if o.SendQueue <= 0 {
		o.SendQueue = DefaultSendQueue
	}
	if o.LoadInterval <= 0 {
		o.LoadInterval = DefaultLoadInterval
	}
	if o.Log == nil {
		o.Log = func(string, ...any) {}
	}
	return nil
}

// wsURL is the server's WebSocket base (ws[s]://host[:port]).
func wsURL(raw string) string {
	s := strings.TrimRight(raw, "/")
	switch {
	case strings.HasPrefix(s, "http://"):
		return "ws://" + strings.TrimPrefix(s, "http://")
	case strings.HasPrefix(s, "https://"):
		return "wss://" + strings.TrimPrefix(s, "https://")
	}
	return s
}
