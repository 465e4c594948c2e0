package externalnode

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"golang.org/x/time/rate"

	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/kernel/eventabi"
)

// OutputBudget bounds what one invocation of a node may emit, checked by
// the host as frames arrive, before anything is queued for the session.
// Zero fields take DefaultOutputBudget's.
type OutputBudget struct {
	// BytesPerSecond and EventsPerSecond are sustained rates; a burst of
	// BudgetBurst's worth is allowed (bytes: at least one MaxEventBytes
	// event).
	BytesPerSecond  float64
	EventsPerSecond float64
	// MaxEventBytes bounds one event (EventBytes).
	MaxEventBytes int
	// MaxBytesInFlight bounds output the session has not consumed yet
	// (Handler.InFlight): a node that emits faster than its downstream
	// takes cannot grow the supervisor.
	MaxBytesInFlight int64
}

// DefaultOutputBudget is generous for speech (48 kHz stereo audio is
// 192 KB/s; a TTS twenty times faster than real time still fits) and
// bounds a flooding node to a few MiB of supervisor memory.
var DefaultOutputBudget = OutputBudget{
	BytesPerSecond:   8 << 20,
	EventsPerSecond:  5000,
	MaxEventBytes:    MaxMessageBytes,
	MaxBytesInFlight: 8 << 20,
}

// WithDefaults fills zero fields from DefaultOutputBudget.
func (b OutputBudget) WithDefaults() OutputBudget {
	d := DefaultOutputBudget
	if b.BytesPerSecond > 0 {
		d.BytesPerSecond = b.BytesPerSecond
	}
	if b.EventsPerSecond > 0 {
		d.EventsPerSecond = b.EventsPerSecond
	}
	if b.MaxEventBytes > 0 {
		d.MaxEventBytes = b.MaxEventBytes
	}
	if b.MaxBytesInFlight > 0 {
		d.MaxBytesInFlight = b.MaxBytesInFlight
	}
	return d
}

// Budget names, as they appear in errors and config.
const (
	BudgetBytesPerSecond  = "bytes_per_s"
	BudgetEventsPerSecond = "events_per_s"
	BudgetMaxEventBytes   = "max_event_bytes"
	BudgetBytesInFlight   = "max_bytes_in_flight"
)

// ErrOutputBudget is the kind of every output budget failure; such an
// error is also a kernel.ErrResourceLimit.
var ErrOutputBudget = errors.New("output_budget")

// BudgetError says which node went past which budget.
type BudgetError struct {
	Node   string
	Budget string // one of the Budget* names
	Limit  string
	Seen   string
}

func (e *BudgetError) Error() string {
	return fmt.Sprintf("output_budget: node %q exceeded %s (limit %s, saw %s)", e.Node, e.Budget, e.Limit, e.Seen)
}

// Unwrap makes it both an output budget and a resource limit failure.
func (e *BudgetError) Unwrap() []error { return []error{ErrOutputBudget, kernel.ErrResourceLimit} }

// EventBytes is the size an event counts for in budgets: its payload plus
// its ids, which a hostile node could also inflate.
func EventBytes(ev eventabi.Event) int {
	n := len(ev.ID) + len(ev.Type) + len(ev.SessionID) + len(ev.TurnID) + len(ev.NodeID) + len(ev.InvocationID) + 64
	switch {
	case ev.Audio != nil:
		n += len(ev.Audio.PCM)
	case ev.Text != nil:
		n += len(ev.Text.Text)
	case ev.Control != nil:
		n += len(ev.Control.Signal) + len(ev.Control.Scope) + len(ev.Control.Reason)
	}
	return n
}

// BudgetBurst is how much of a rate an invocation may spend at once. A
// fifth of a second's worth still takes a whole spoken reply emitted as
// fast as it is synthesised (at the default rate 1,000 events, 20 s of
// 20 ms frames), while a flooding node gets that much into its session
// before it fails, not a whole second's worth: what it is let in is what
// it costs the supervisor, and every session on it shares that.
const BudgetBurst = 200 * time.Millisecond

// budgetState is one invocation's budget, used by the reader goroutine only.
type budgetState struct {
	node   string
	b      OutputBudget
	bytes  *rate.Limiter
	events *rate.Limiter
}

func newBudgetState(node string, b OutputBudget) *budgetState {
	b = b.WithDefaults()
	return &budgetState{node: node, b: b,
		bytes:  rate.NewLimiter(rate.Limit(b.BytesPerSecond), max(burst(b.BytesPerSecond), b.MaxEventBytes)),
		events: rate.NewLimiter(rate.Limit(b.EventsPerSecond), max(burst(b.EventsPerSecond), 1)),
	}
}

// FloodKillFrames bounds what the host reads of an invocation after it
// failed its output budget. A node that honours the cancel stops within
// a round trip (a few dozen frames were seen in flight); one that goes on
// emitting would keep the supervisor decoding until the kill grace, so
// past this many frames (or FloodKillBytes) the host stops reading the
// instance and it is killed (FloodError).
const (
	FloodKillFrames = 1024
	FloodKillBytes  = 16 << 20
)

// FloodError: an instance went on emitting for an invocation after that
// invocation failed its output budget and was cancelled. The host stopped
// reading it; every call on it ends with this error and the supervisor
// kills it. It is a resource limit failure, like the budget it ignored.
type FloodError struct {
	Instance   string
	Pid        int
	Invocation string
	Frames     int64
	Bytes      int64
	Budget     error // the budget failure it ignored
}

func (e *FloodError) Error() string {
	return fmt.Sprintf("%s (pid %d) kept emitting after invocation %q failed its output budget and was cancelled (%d more frames, %d bytes; %v): the host stopped reading it",
		e.Instance, e.Pid, e.Invocation, e.Frames, e.Bytes, e.Budget)
}

func (e *FloodError) Unwrap() []error { return []error{ErrOutputBudget, kernel.ErrResourceLimit} }

// burst is BudgetBurst's worth of a per-second rate.
func burst(perSecond float64) int { return int(perSecond * BudgetBurst.Seconds()) }

// admit charges one event of n bytes; inFlight already includes it.
func (s *budgetState) admit(now time.Time, n int, inFlight int64) error {
	switch {
	case n > s.b.MaxEventBytes:
		return s.fail(BudgetMaxEventBytes, strconv.Itoa(s.b.MaxEventBytes)+" B", strconv.Itoa(n)+" B")
	case inFlight > s.b.MaxBytesInFlight:
		return s.fail(BudgetBytesInFlight, strconv.FormatInt(s.b.MaxBytesInFlight, 10)+" B", strconv.FormatInt(inFlight, 10)+" B")
	case !s.events.AllowN(now, 1):
		return s.fail(BudgetEventsPerSecond, strconv.FormatFloat(s.b.EventsPerSecond, 'f', -1, 64)+"/s", "a faster burst")
	case !s.bytes.AllowN(now, n):
		return s.fail(BudgetBytesPerSecond, strconv.FormatFloat(s.b.BytesPerSecond, 'f', -1, 64)+" B/s", "a faster burst")
	}
	return nil
}

func (s *budgetState) fail(budget, limit, seen string) error {
	return &BudgetError{Node: s.node, Budget: budget, Limit: limit, Seen: seen}
}
