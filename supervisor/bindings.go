package supervisor

import (
	"strings"
	"sync"

	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/supervisor/session"
)

// sessionBindings is one session's view of the runtime's bindings. It
// remembers which pool keys the session's open turn froze, so that an old
// pool is drained only once no turn is bound to it. Binding is called on
// the session goroutine at plan freeze, before the turn_open record; the
// keys are released at the turn's turn_close (or session_close). It also
// remembers every key the session was ever bound to: a tenant's (or the
// session's) pool is not stopped as idle while a live session uses it.
type sessionBindings struct {
	rt      *Runtime
	next    session.Timeline
	tenant  string
	session string

	mu      sync.Mutex
	pending map[string]bool            // keys handed out since the last turn_open
	turns   map[string]map[string]bool // open turn -> keys
	bound   map[string]bool            // every key handed out to this session

	admit   *turnAdmitter // the session's pre-turn admission (admission.go)
	release func()        // gives the session's admission slot back
}

func (sb *sessionBindings) Binding(provider string) (kernel.Binding, bool) {
	b, ok := sb.rt.binding(provider, sb.tenant, sb.session)
	if ok && b.Pool != "" {
		sb.mu.Lock()
		if sb.pending == nil {
			sb.pending = map[string]bool{}
		}
		sb.pending[b.Pool] = true
		sb.bound[b.Pool] = true
		sb.mu.Unlock()
	}
	return b, ok
}

// boundTo says whether the session was ever bound to key.
func (sb *sessionBindings) boundTo(key string) bool {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	return sb.bound[key]
}

// Append watches lifecycle records, then passes them on.
func (sb *sessionBindings) Append(rec kernel.TimelineRecord) {
	sb.mu.Lock()
	switch rec.Type {
	case "turn_open":
		sb.turns[rec.TurnID] = sb.pending
		sb.pending = nil
	case "turn_close":
		delete(sb.turns, rec.TurnID)
	case "pre_turn_reject", "pre_turn_defer":
		sb.pending = nil
	}
	sb.mu.Unlock()
	if sb.admit != nil {
		sb.admit.record(rec.Type)
	}
	if rec.Type == "session_close" {
		sb.rt.forget(sb)
	}
	if sb.next != nil {
		sb.next.Append(rec)
	}
}

// holds says whether an open turn (or a plan being frozen) is bound to a
// key that match accepts.
func (sb *sessionBindings) holds(match func(key string) bool) bool {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	for key := range sb.pending {
		if match(key) {
			return true
		}
	}
	for _, keys := range sb.turns {
		for key := range keys {
			if match(key) {
				return true
			}
		}
	}
	return false
}

// poolHeld says whether any session's turn is bound to a pool of the
// generation with key gen (its shared pool or any keyed one).
func (rt *Runtime) poolHeld(gen string) bool {
	match := func(key string) bool { return key == gen || strings.HasPrefix(key, gen+"/") }
	rt.mu.RLock()
	defer rt.mu.RUnlock()
	for sb := range rt.sessions {
		if sb.holds(match) {
			return true
		}
	}
	return false
}
