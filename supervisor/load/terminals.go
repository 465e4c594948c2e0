package load

import (
	"fmt"
	"sync"

	"github.com/rspp/rspp/kernel"
)

// TerminalCounter counts turn lifecycles as records stream past
// (session.Timeline), keeping only what is bounded: the turns open right
// now, a ring of recently ended ones (to catch a second terminal) and
// counters. A long-running serve keeps nothing per turn for its life: the
// records themselves go to the timeline writer, if any, and are gone.
// It checks what CountTerminals checks on a whole timeline, except that a
// second terminal is caught only within the last recentTurns ended turns.
// Safe for concurrent use.
type TerminalCounter struct {
	mu     sync.Mutex
	t      Terminals
	open   map[string]struct{} // session/turn with turn_open and no terminal yet
	recent map[string]struct{} // ended turns in ring
	ring   []string
	next   int
}

const (
	recentTurns   = 4096
	maxWrongKept  = 100
	maxReasonKeys = 64
)

// NewTerminalCounter returns an empty counter.
func NewTerminalCounter() *TerminalCounter {
	return &TerminalCounter{t: Terminals{AbortReasons: map[string]int{}}, open: map[string]struct{}{},
		recent: map[string]struct{}{}, ring: make([]string, recentTurns)}
}

func (c *TerminalCounter) wrongLocked(k, why string) {
	c.t.WrongCount++
	if len(c.t.Wrong) < maxWrongKept {
		c.t.Wrong = append(c.t.Wrong, k+": "+why)
	}
}

func (c *TerminalCounter) endedLocked(k string) {
	if old := c.ring[c.next]; old != "" {
		delete(c.recent, old)
	}
	c.ring[c.next] = k
	c.recent[k] = struct{}{}
	c.next = (c.next + 1) % len(c.ring)
}

// Append implements session.Timeline.
func (c *TerminalCounter) Append(r kernel.TimelineRecord) {
	switch r.Type {
	case "session_open", "session_close", "turn_open", "turn_commit", "turn_abort":
	default:
		return
	}
	k := r.SessionID + "/" + r.TurnID
	c.mu.Lock()
	defer c.mu.Unlock()
	switch r.Type {
	case "session_open":
		c.t.Sessions++
	case "session_close":
		c.t.Closed++
	case "turn_open":
		c.t.Opened++
		if _, dup := c.open[k]; dup {
			c.wrongLocked(k, "second turn_open")
			return
		}
		c.open[k] = struct{}{}
	case "turn_commit", "turn_abort":
		if _, ok := c.open[k]; !ok {
			if _, done := c.recent[k]; done {
				c.wrongLocked(k, "second terminal ("+r.Type+")")
			} else {
				c.wrongLocked(k, r.Type+" without turn_open")
			}
			return
		}
		delete(c.open, k)
		c.endedLocked(k)
		if r.Type == "turn_commit" {
			c.t.Committed++
			return
		}
		c.t.Aborted++
		class := AbortClass(r.Reason)
		if _, ok := c.t.AbortReasons[class]; !ok && len(c.t.AbortReasons) >= maxReasonKeys {
			class = "other"
		}
		c.t.AbortReasons[class]++
	}
}

// Terminals is a snapshot; turns still open count as wrong only if
// final is set (the sessions are over and each turn should have ended).
func (c *TerminalCounter) Terminals(final bool) Terminals {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.t
	t.AbortReasons = make(map[string]int, len(c.t.AbortReasons))
	for k, v := range c.t.AbortReasons {
		t.AbortReasons[k] = v
	}
	t.Wrong = append([]string(nil), c.t.Wrong...)
	if final {
		for k := range c.open {
			t.WrongCount++
			if len(t.Wrong) < maxWrongKept {
				t.Wrong = append(t.Wrong, fmt.Sprintf("%s: no terminal", k))
			}
		}
	}
	return t
}

// openTurns is how many turns are open now.
func (c *TerminalCounter) openTurns() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.open)
}
