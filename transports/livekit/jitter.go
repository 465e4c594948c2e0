package livekit

// reorder puts RTP payloads back in sequence order: a packet that arrives
// before its predecessors waits until they come, or until depth packets
// wait, when the missing ones are counted lost and skipped. A packet older
// than the last one released is late and dropped. Only the read loop uses
// it.
type reorder struct {
	depth   int
	next    uint16
	started bool
	held    map[uint16][]byte
}

func newReorder(depth int) *reorder { return &reorder{depth: depth, held: map[uint16][]byte{}} }

// push takes one packet; release gets each payload that is now in order,
// with the number of packets lost just before it.
func (r *reorder) push(seq uint16, payload []byte, release func(lost int, payload []byte) bool) (late bool, ok bool) {
	if !r.started {
		r.started, r.next = true, seq
	}
	if d := int16(seq - r.next); d < 0 {
		return true, true
	}
	if _, dup := r.held[seq]; dup {
		return true, true
	}
	r.held[seq] = payload
	lost := 0
	for len(r.held) > 0 {
		p, have := r.held[r.next]
		if !have {
			if len(r.held) < r.depth {
				return false, true
			}
			// Give up on r.next: skip to the oldest packet held.
			oldest, first := r.next, true
			for s := range r.held {
				if first || int16(s-oldest) < 0 || int16(oldest-r.next) < 0 {
					oldest, first = s, false
				}
			}
			lost += int(uint16(oldest - r.next))
			r.next = oldest
			continue
		}
		delete(r.held, r.next)
		r.next++
		if !release(lost, p) {
			return false, false
		}
		lost = 0
	}
	return false, true
}
