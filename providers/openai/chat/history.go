package chat

import (
	"container/list"
	"sync"
)

// exchange is one completed turn of a conversation.
type exchange struct{ user, assistant string }

// histories keeps each session's recent exchanges, bounded twice: at most
// perSession exchanges a session (the oldest dropped first) and at most
// sessions sessions (the least recently used forgotten first). The plugin
// hears of no session's end, so the second bound is what keeps memory
// flat on a long-running instance. Safe for concurrent use.
type histories struct {
	perSession, sessions int

	mu    sync.Mutex
	order *list.List               // of *sessionHistory, most recent at the front
	byID  map[string]*list.Element // session id -> element of order
}

type sessionHistory struct {
	id        string
	exchanges []exchange
}

func newHistories(perSession, sessions int) *histories {
	return &histories{perSession: perSession, sessions: sessions, order: list.New(), byID: map[string]*list.Element{}}
}

// get returns a copy of the session's exchanges, oldest first.
func (h *histories) get(session string) []exchange {
	h.mu.Lock()
	defer h.mu.Unlock()
	el := h.byID[session]
	if el == nil {
		return nil
	}
	h.order.MoveToFront(el)
	return append([]exchange(nil), el.Value.(*sessionHistory).exchanges...)
}

// add appends one exchange to the session's history.
func (h *histories) add(session string, ex exchange) {
	if h.perSession <= 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	el := h.byID[session]
	if el == nil {
		el = h.order.PushFront(&sessionHistory{id: session})
		h.byID[session] = el
		for h.order.Len() > h.sessions {
			old := h.order.Back()
			h.order.Remove(old)
			delete(h.byID, old.Value.(*sessionHistory).id)
		}
	} else {
		h.order.MoveToFront(el)
	}
	sh := el.Value.(*sessionHistory)
	sh.exchanges = append(sh.exchanges, ex)
	if n := len(sh.exchanges) - h.perSession; n > 0 {
		sh.exchanges = append(sh.exchanges[:0], sh.exchanges[n:]...)
	}
}

// len is how many sessions are remembered.
func (h *histories) len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.order.Len()
}
