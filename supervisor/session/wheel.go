package session

import (
	"sync"
	"sync/atomic"
	"time"
)

// Wheel is one timer facility for many sessions: a single ticker at
// Resolution drives every session's periodic deadline check (instead of a
// time.Ticker per session) and one-shot waits (At, e.g. a feed pacing its
// frames, instead of a timer per frame). Sessions are spread over the
// phases of their tick period, so a thousand sessions do not all check
// their deadlines in the same instant. A session whose Config.Tick differs
// from the wheel's keeps a ticker of its own. A session woken anyway (a
// frame every 20 ms) ticks on that wake-up once most of a period has passed,
// and the wheel then leaves it be: one wake-up per frame instead of two
// (Session.tickOnWake).
type Wheel struct {
	res    time.Duration
	tick   time.Duration
	slots  int
	origin time.Time

	mu      sync.Mutex
	n       int64                   // last tick index run
	cur     atomic.Int64            // n, for sessions to read without the lock
	waits   map[int64]chan struct{} // tick index -> closed when it runs
	phases  [][]*Session            // sessions ticked at index%slots
	closed  bool
	stop    chan struct{}
	done    chan struct{}
	started bool
}

// NewWheel returns a wheel of resolution res whose sessions are ticked
// every tick (rounded to a multiple of res). Close stops it.
func NewWheel(res, tick time.Duration) *Wheel {
	if res <= 0 {
		res = 2 * time.Millisecond
	}
	if tick < res {
		tick = res
	}
	slots := int(tick / res)
	w := &Wheel{res: res, tick: time.Duration(slots) * res, slots: slots, origin: time.Now(),
		waits: map[int64]chan struct{}{}, phases: make([][]*Session, slots), stop: make(chan struct{}), done: make(chan struct{})}
	return w
}

// Tick is the period at which the wheel ticks its sessions.
func (w *Wheel) Tick() time.Duration { return w.tick }

// startLocked starts the wheel's goroutine on first use.
func (w *Wheel) startLocked() {
	if w.started || w.closed {
		return
	}
	w.started = true
	w.n = int64(time.Since(w.origin) / w.res)
	w.cur.Store(w.n)
	go w.run()
}

func (w *Wheel) run() {
	defer close(w.done)
	t := time.NewTicker(w.res)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case now := <-t.C:
			w.advance(int64(now.Sub(w.origin) / w.res))
		}
	}
}

// advance runs every tick index up to cur: closes its waits, ticks its
// phase's sessions. It never blocks: a session is only flagged and woken.
func (w *Wheel) advance(cur int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if cur-w.n > int64(w.slots) {
		// Far behind (a stalled process): every phase is due once; the
		// waits of the skipped indexes are run below.
		for _, ph := range w.phases {
			for _, s := range ph {
				s.tickDue(cur, int64(w.slots))
			}
		}
		for i, c := range w.waits {
			if i <= cur {
				close(c)
				delete(w.waits, i)
			}
		}
		w.n = cur
		w.cur.Store(cur)
		return
	}
	for i := w.n + 1; i <= cur; i++ {
		if c, ok := w.waits[i]; ok {
			close(c)
			delete(w.waits, i)
		}
		for _, s := range w.phases[i%int64(w.slots)] {
			s.tickDue(i, int64(w.slots))
		}
	}
	if cur > w.n {
		w.n = cur
		w.cur.Store(cur)
	}
}

// index is the wheel's current tick index.
func (w *Wheel) index() int64 { return w.cur.Load() }

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// At returns a channel closed at the wheel's first tick at or after t
// (already closed if t has passed). Waiters of one tick share a channel.
func (w *Wheel) At(t time.Time) <-chan struct{} {
	d := t.Sub(w.origin)
	idx := int64((d + w.res - 1) / w.res)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.startLocked()
	if w.closed || idx <= w.n {
		return closedChan
	}
	c, ok := w.waits[idx]
	if !ok {
		c = make(chan struct{})
		w.waits[idx] = c
	}
	return c
}

// add ticks s from now on, in the phase with the fewest sessions.
func (w *Wheel) add(s *Session) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.startLocked()
	best := 0
	for i := range w.phases {
		if len(w.phases[i]) < len(w.phases[best]) {
			best = i
		}
	}
	w.phases[best] = append(w.phases[best], s)
	s.phase = best
}

func (w *Wheel) remove(s *Session) {
	w.mu.Lock()
	defer w.mu.Unlock()
	ph := w.phases[s.phase]
	for i, x := range ph {
		if x == s {
			ph[i] = ph[len(ph)-1]
			ph[len(ph)-1] = nil
			w.phases[s.phase] = ph[:len(ph)-1]
			return
		}
	}
}

// sessions counts the sessions the wheel ticks (tests).
func (w *Wheel) sessions() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, ph := range w.phases {
		n += len(ph)
	}
	return n
}

// Close stops the wheel; pending At channels are closed. Sessions still
// registered are no longer ticked. Safe to call twice.
func (w *Wheel) Close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		<-w.done
		return
	}
	w.closed = true
	started := w.started
	for i, c := range w.waits {
		close(c)
		delete(w.waits, i)
	}
	w.mu.Unlock()
	close(w.stop)
	if started {
		<-w.done
	} else {
		close(w.done)
	}
}
