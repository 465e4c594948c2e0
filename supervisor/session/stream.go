package session

import "github.com/rspp/rspp/kernel/eventabi"

// Stream is one producer's ordered ingest into a session that does not
// wait on the session loop while the loop works on its frame: the
// kernel's verdict on a frame is collected when the producer hands over
// its next one, or at Flush. Frames reach the kernel in order and none
// follows one the kernel refused: Ingest then returns the refused frame's
// verdict instead of queueing the new frame. A producer pacing its frames
// in real time finds each verdict ready when its next frame is due, so it
// parks once per frame (its pacing) instead of twice.
//
// A Stream is used by one goroutine at a time.
type Stream struct {
	s       *Session
	res     chan error
	pending bool // a frame was handed over; its verdict is not collected
}

// Stream returns a new ingest stream into the session.
func (s *Session) Stream() *Stream { return &Stream{s: s, res: make(chan error, 1)} }

// Ingest collects the verdict on the previous frame and, if the kernel
// took it, queues ev. An error is the previous frame's verdict (ev was not
// queued), or ErrClosed.
func (st *Stream) Ingest(ev eventabi.Event) error {
	if err := st.Flush(); err != nil {
		return err
	}
	if !st.s.push(input{kind: inIngest, ev: ev, res: st.res}, true) {
		return ErrClosed
	}
	st.pending = true
	return nil
}

// Flush waits for the kernel's verdict on the last frame handed over (nil
// when there is none pending).
func (st *Stream) Flush() error {
	if !st.pending {
		return nil
	}
	st.pending = false
	select {
	case err := <-st.res: // the common case: ready, and no two-channel select
		return err
	default:
	}
	select {
	case err := <-st.res:
		return err
	case <-st.s.done:
		// Every input the loop accepted is answered before done closes.
		select {
		case err := <-st.res:
			return err
		default:
			return ErrClosed
		}
	}
}
