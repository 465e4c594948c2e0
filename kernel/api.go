// Package kernel is the deterministic turn engine (RK-01..RK-11). It owns
// session and turn lifecycle, plan freeze, lanes, the graph executor's
// decisions, cancellation and the egress fence. It does no I/O and reads no
// clock of its own: time and ids are injected, inputs arrive as method calls,
// and everything the outside world must do comes back as Effects drained with
// Ready (the etcd-raft RawNode/Ready pattern). The I/O loop that carries out
// effects lives in supervisor/session.
//
// A Session is not safe for concurrent use: one goroutine (the runner's
// session loop) owns it.
//
// It imports only kernel/eventabi of this module (test/layout); the session
// driver that does its I/O is supervisor/session.
package kernel

import (
	"errors"
	"time"

	"github.com/rspp/rspp/kernel/eventabi"
)

// Clock gives monotonic time in nanoseconds. Tests use a manual clock.
type Clock interface {
	Now() int64
}

// IDs makes identifiers. Tests use a deterministic counter.
type IDs interface {
	NewID(kind string) string // kind: "turn", "inv", "event", "plan"
}

// Reserved graph endpoints.
const (
	Ingress = "ingress" // transport input: audio frames, speech start/end
	Egress  = "egress"  // transport output: agent audio (and text, if routed)
)

// GraphSpec is the pipeline as configured: a DAG whose sources are Ingress
// and whose sinks are Egress.
type GraphSpec struct {
	Nodes []NodeSpec
	Edges []EdgeSpec
}

// NodeSpec is one node of the graph.
type NodeSpec struct {
	ID       string
	Kind     string        // "stt", "llm", "tts", "custom"
	Provider string        // binding key: which provider/node implementation serves it
	Timeout  time.Duration // per-invocation timeout; frozen into the plan
	// OnFailure is the provider policy applied when an invocation of this node
	// fails: "abort" (default), "retry" (on a standby, only if nothing was
	// emitted downstream yet), "fallback" (switch to Fallback provider),
	// "branch" (hand the inputs to the dormant node BranchTo).
	OnFailure  string
	MaxRetries int
	Fallback   string
	// Providers is the node's ordered provider list when it names more
	// than one (Provider is its first): a turn binds the first whose
	// circuit is not open at plan freeze (switch), and under OnFailure
	// "fallback" a failed invocation moves on to the next (see
	// ResolvedTurnPlan.NextBinding). Empty means Provider alone.
	Providers []string
	// Requires is what the node needs of its provider (sample rate,
	// language, streaming); a binding whose Capabilities do not meet it is
	// passed over at plan freeze like a down one.
	Requires Requirements
	// Join is how a node with several upstreams takes its input: "all"
	// (default: merge every upstream in arrival order, input closes when all
	// upstreams ended) or "select" (the first upstream to deliver wins).
	Join string
	// BranchTo names a dormant node of the graph (one without in-edges)
	// that takes over this node's inputs when it fails under OnFailure
	// "branch": a fallback branch of the graph rather than of the provider.
	// The branch's out-edges may only lead to Egress or to this node's
	// downstream nodes.
	BranchTo string
}

// EdgeSpec connects two nodes (or an endpoint) on a lane with a bounded queue.
type EdgeSpec struct {
	From, To string
	Capacity int           // max queued events; 0 = profile-derived default (never unbounded)
	BlockFor time.Duration // bounded block time before shedding (low-latency profiles)
	// Types filters which event types cross the edge (empty = all).
	Types []eventabi.Type
	// Overflow is what happens when the queue is full (after BlockFor, if
	// set): "shed" (default: drop the oldest queued event) or "degrade"
	// (coalesce text into the newest queued event; other payloads shed).
	Overflow string
}

// Binding says which implementation serves a node for a turn. Bindings are
// read from a BindingSource at plan freeze and are immutable for the turn.
type Binding struct {
	Provider string // provider/node name from config
	Version  string // version reported by the plugin (Describe)
	Pool     string // opaque key the runner uses to find the instance pool
	// Accepts and Emits are the event types the bound implementation
	// declared (Describe); empty means it declared none. The kernel
	// delivers a node only what it accepts and routes only what it
	// declared it emits.
	Accepts []eventabi.Type
	Emits   []eventabi.Type
	// Down says why the provider cannot serve right now (its circuit is
	// open, it failed to start); "" when it can. Plan freeze then binds
	// the next provider of the node's list, if there is one.
	Down string
	// Caps is what the bound implementation declared it can serve.
	Caps Capabilities
	// Idempotent: the implementation declared that the same inputs give
	// the same outputs (externalnode.Info.Idempotent). A retry of it may
	// follow output already sent downstream: the retry's first outputs,
	// the ones already delivered, are deduplicated (dropped, counted).
	Idempotent bool
}

// BindingSource returns the current binding for a provider name. Hot upgrade
// changes what it returns; a turn that is already open keeps its frozen copy.
type BindingSource interface {
	Binding(provider string) (Binding, bool)
}

// SessionConfig configures one session.
type SessionConfig struct {
	SessionID string
	TenantID  string
	Epoch     uint64
	Graph     GraphSpec
	Bindings  BindingSource
	Clock     Clock
	IDs       IDs
	VAD       VADConfig
	// UnknownEventPolicy for ingress events of a type the gateway does not
	// know: "reject" (typed error), "drop" (counted) or "pass".
	UnknownEventPolicy string

	// Optional; zero values give the defaults noted.

	// WallAnchor is the unix time (ns) at 0 of Clock: events the kernel
	// emits carry WallNanos = WallAnchor + MonoNanos (0: no wall time).
	WallAnchor int64

	// Admission decides admit/defer/reject for each proposed turn
	// (nil: always admit).
	Admission Admitter
	// Authority reports the session's current lease epoch; a turn proposed
	// while Epoch is stale is rejected before turn_open (nil: always valid).
	Authority Authority
	// RetryBuffer bounds the inputs kept per invocation for retry/fallback
	// re-delivery (0: DefaultRetryBuffer).
	RetryBuffer int
	// TelemetryCapacity bounds queued telemetry effects; the oldest are
	// dropped when full (0: DefaultTelemetryCapacity).
	TelemetryCapacity int
	// Limits bounds event sizes at the gateway (zero: eventabi.DefaultLimits).
	Limits eventabi.Limits
	// AwaitPlayback is for live transports, which play a turn's audio out
	// in real time: a turn whose invocations all ended OK does not commit
	// yet; the kernel emits EgressDone after the turn's last EgressEvent
	// and commits when the transport ingests control.playback_done for
	// the turn. Until then the turn is still the agent's, so user speech
	// is a barge-in that aborts and fences it. A transport that never
	// reports aborts the turn with reason playback_timeout once the
	// turn's egress audio plus PlaybackGrace has passed. Live sessions
	// also record speech_end (the user's end of speech in the turn) and
	// playback_done. False: a turn commits when its invocations end (the
	// file transport).
	AwaitPlayback bool
	//
	// Egress is credit-based then: an egress event handed out keeps its
	// slot on its edge until the transport reports it played or dropped
	// (OnEgressPlayed), so the edge's capacity bounds what the transport
	// holds unplayed, and a full edge holds the producing node back
	// (ErrQueueFull, the runner retries) for up to the edge's BlockFor
	// (default DefaultEgressBlock) before it sheds.
	//
	// PlaybackGrace is how long past its audio's duration a turn waits
	// for playback_done (0: DefaultPlaybackGrace).
	PlaybackGrace time.Duration
	// Budgets are the turn, node and provider budgets and provider call
	// costs frozen into every turn's plan (RK-07, budget.go; zero: none).
	Budgets Budgets
	// OutstandingInputs bounds how many inputs of one invocation Ready hands
	// out before the runner reports them taken (OnInputsTaken); later ones
	// stay queued on their edge (0: DefaultOutstandingInputs).
	OutstandingInputs int
}

// VADConfig drives the kernel's energy voice-activity detector on ingress
// audio. Disabled means the transport sends speech start/end itself.
type VADConfig struct {
	Disabled    bool
	ThresholdDB float64       // frame RMS above this (dBFS) counts as speech, e.g. -40
	MinSpeech   time.Duration // speech must last this long to start a turn
	Hangover    time.Duration // silence this long ends the utterance
}

// Effects: what the runner must carry out, in the order Ready returns them
// (control effects before data before telemetry).
type Effect interface{ isEffect() }

// InvocationRef identifies one invocation of one node in one turn.
type InvocationRef struct {
	SessionID    string
	TurnID       string
	NodeID       string
	InvocationID string
}

// StartInvocation asks the runner to open an invocation on an instance of
// Binding.Pool. Its outputs come back through Session.OnNodeEvent and its end
// through Session.OnInvocationEnd.
type StartInvocation struct {
	Ref      InvocationRef
	Binding  Binding
	Deadline int64 // monotonic ns; the runner cancels and fails it past this
	Attempt  int   // 0 first try, 1.. retries
}

// DeliverInput sends one input event to an open invocation.
type DeliverInput struct {
	InvocationID string
	Event        eventabi.Event
}

// CloseInput says no more input will come for the invocation.
type CloseInput struct{ InvocationID string }

// CancelInvocation cancels an open invocation (on the control path).
type CancelInvocation struct {
	InvocationID string
	Reason       string
}

// EgressEvent is output for the transport (agent audio, text).
type EgressEvent struct{ Event eventabi.Event }

// FenceEgress tells the transport to drop anything it still buffers for
// TurnID: from now on nothing of that turn may be played.
type FenceEgress struct {
	TurnID string
	Reason string
}

// EgressDone says the turn will send no more egress: once the transport
// has played what it holds of the turn it ingests control.playback_done
// (SessionConfig.AwaitPlayback only). It travels on the data lane, behind
// the turn's last EgressEvent.
type EgressDone struct{ TurnID string }

// Record is a timeline record to append.
type Record struct{ Record TimelineRecord }

// SessionClosed is the last effect of a session.
type SessionClosed struct{ Reason string }

func (StartInvocation) isEffect()  {}
func (DeliverInput) isEffect()     {}
func (CloseInput) isEffect()       {}
func (CancelInvocation) isEffect() {}
func (EgressEvent) isEffect()      {}
func (FenceEgress) isEffect()      {}
func (EgressDone) isEffect()       {}
func (Record) isEffect()           {}
func (SessionClosed) isEffect()    {}

// TimelineRecord is one line of replay evidence. Lifecycle types are
// turn_open, turn_active, turn_commit, turn_abort, turn_close; others include
// session_open, session_close, plan_frozen, invocation_start, invocation_end,
// cancel, fence, pressure, pre_turn_reject, pre_turn_defer, egress_drop.
type TimelineRecord struct {
	Seq          uint64            `json:"seq"`
	SessionID    string            `json:"session_id"`
	TurnID       string            `json:"turn_id,omitempty"`
	Type         string            `json:"type"`
	Reason       string            `json:"reason,omitempty"`
	NodeID       string            `json:"node_id,omitempty"`
	InvocationID string            `json:"invocation_id,omitempty"`
	MonoNanos    int64             `json:"mono_ns"`
	Attrs        map[string]string `json:"attrs,omitempty"`
	// Timebase (RK-11): wall clock (unix ns) and media time (ns of ingress
	// audio taken by the session so far) of the record, stamped by the
	// recording layer from the session's timebase (see Timebase).
	WallNanos  int64 `json:"wall_ns,omitempty"`
	MediaNanos int64 `json:"media_ns,omitempty"`
	// Input is set on records of type "input": one input the kernel
	// session took, recorded at level full (see InputRecord).
	Input *InputRecord `json:"input,omitempty"`
}

// Typed failure kinds for invocation ends and kernel errors. The runner maps
// supervisor/plugin failures onto these; tests match with errors.Is.
var (
	ErrNodeCrashed       = errors.New("node crashed")
	ErrNodeTimeout       = errors.New("node invocation timed out")
	ErrNodeFailed        = errors.New("node failed")
	ErrNodeUnavailable   = errors.New("node unavailable")
	ErrProtocol          = errors.New("node protocol violation")
	ErrResourceLimit     = errors.New("node hit a resource limit")
	ErrCancelled         = errors.New("cancelled")
	ErrSessionClosed     = errors.New("session closed")
	ErrUnknownInvocation = errors.New("unknown invocation")
	ErrQueueFull         = errors.New("queue full")
)

// InvocationResult is how an invocation ended. Err nil means success.
type InvocationResult struct {
	Err error
	// Detail is a short human-readable cause, e.g. "signal: killed".
	Detail string
}
