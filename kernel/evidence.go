package kernel

import (
	"encoding/json"

	"github.com/rspp/rspp/kernel/eventabi"
)

// Replay evidence (RK-11, OR-02). The kernel is deterministic given its
// inputs: the recording layer (kernel/record) writes every input a session
// takes as a timeline record of type "input" at recording level full, so
// that `rspp replay` can rebuild the session and reproduce its lifecycle
// and decision records byte for byte.

// Recording levels.
const (
	// LevelFull records inputs (ingress events, node outputs, invocation
	// ends, flow credit, effective ticks) as well as control evidence:
	// enough to resimulate the session.
	LevelFull = "full"
	// LevelControl records lifecycle, decisions and markers only.
	LevelControl = "control"
)

// Input kinds of an InputRecord: one per kernel Session input method.
const (
	InputOpen      = "open"       // NewSession; Config holds the session config
	InputIngest    = "ingest"     // Ingest(Event)
	InputNodeEvent = "node_event" // OnNodeEvent(Inv, Event)
	InputNodeEnd   = "node_end"   // OnInvocationEnd(Inv, Err)
	InputTaken     = "taken"      // OnInputsTaken(Inv, Count)
	InputPlayed    = "played"     // OnEgressPlayed(Event.TurnID, Count)
	InputTick      = "tick"       // Tick(), recorded only when it had effects
	InputClose     = "close"      // Close(Reason)
	InputCancel    = "cancel"     // Cancel(Scope, Target, Reason)
)

// InputRecord is one kernel input. The record carrying it has the clock
// reading the kernel saw for it as MonoNanos.
type InputRecord struct {
	// N numbers the session's inputs from 1 (open); a gap means inputs
	// were not recorded (level control from there on).
	N    uint64 `json:"n"`
	Kind string `json:"kind"`
	// Ready is how many Ready calls that returned effects the runner made
	// since the previous input (empty ones change nothing).
	Ready  int             `json:"ready,omitempty"`
	Event  *eventabi.Event `json:"event,omitempty"`
	Inv    string          `json:"inv,omitempty"`
	Count  int             `json:"count,omitempty"`
	Reason string          `json:"reason,omitempty"`
	Scope  string          `json:"scope,omitempty"`
	Target string          `json:"target,omitempty"`
	Err    *RecordedError  `json:"err,omitempty"`
	// Verdict is the kernel's answer to the input ("" for nil), checked
	// on resimulation.
	Verdict string `json:"verdict,omitempty"`
	// Oracle holds the answers of the session's injected, nondeterministic
	// collaborators (bindings, admission, authority, ids) the kernel asked
	// for while taking this input, in order.
	Oracle []OracleAnswer `json:"oracle,omitempty"`
	// Config (open only): the SessionConfig without its interfaces.
	Config json.RawMessage `json:"config,omitempty"`
	// WallAnchor (open only): unix ns at monotonic 0 of the clock.
	WallAnchor int64 `json:"wall_anchor,omitempty"`
	// Oracles (open only): which collaborators were configured.
	Oracles []string `json:"oracles,omitempty"`
	// Level and Budget (open only): the session's recording policy.
	Level  string `json:"level,omitempty"`
	Budget int64  `json:"budget,omitempty"`
}

// RecordedError is an invocation end's error: its text and the typed
// kinds it matched (errors.Is), so the same decision can be replayed.
type RecordedError struct {
	Text   string   `json:"text"`
	Kinds  []string `json:"kinds,omitempty"`
	Detail string   `json:"detail,omitempty"`
}

// OracleAnswer is one answer of a collaborator.
type OracleAnswer struct {
	Kind  string          `json:"kind"` // "binding", "admission", "authority", "id"
	Key   string          `json:"key,omitempty"`
	Value json.RawMessage `json:"value"`
}

// ErrorKinds are the typed errors an invocation end is matched against,
// by name, for recording (name -> sentinel).
var ErrorKinds = []struct {
	Name string
	Err  error
}{
	{"resource_limit", ErrResourceLimit},
	{"crashed", ErrNodeCrashed},
	{"timeout", ErrNodeTimeout},
	{"protocol", ErrProtocol},
	{"unavailable", ErrNodeUnavailable},
	{"cancelled", ErrCancelled},
	{"failed", ErrNodeFailed},
	{"session_closed", ErrSessionClosed},
	{"unknown_invocation", ErrUnknownInvocation},
	{"queue_full", ErrQueueFull},
	{"stale_epoch", ErrStaleEpoch},
	{"fenced", ErrFenced},
}
