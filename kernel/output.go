package kernel

import (
	"fmt"
	"time"

	"github.com/rspp/rspp/kernel/eventabi"
)

// DefaultEgressBlock is an AwaitPlayback egress edge's default BlockFor:
// how long agent output may wait for the playout to make room in one
// pressure episode before the edge sheds.
const DefaultEgressBlock = 30 * time.Second

// OnEgressPlayed reports that the transport played (or dropped) the next
// n egress events of turnID it was handed (AwaitPlayback): their edge
// slots are free again. Reports for a turn that is no longer the active
// one are ignored (its slots were freed when it ended).
func (s *Session) OnEgressPlayed(turnID string, n int) {
	if s.closed || n <= 0 {
		return
	}
	s.now = s.cfg.Clock.Now()
	t := s.turn
	if t == nil || t.id != turnID {
		return
	}
	n = min(n, len(t.egressOut))
	for _, ei := range t.egressOut[:n] {
		s.edgeTaken(ei)
	}
	t.egressOut = t.egressOut[n:]
	if len(t.egressOut) == 0 {
		t.egressOut = nil
	}
}

// DefaultPlaybackGrace is how long past its audio's duration an
// AwaitPlayback turn waits for playback_done before it aborts.
const DefaultPlaybackGrace = 5 * time.Second

// playbackDone is the live transport saying it played the turn's last
// audio: a turn waiting for it commits. After the turn's fence it is
// rejected with ErrFenced like the other output signals; for any other
// turn, or before EgressDone, it changes nothing.
func (s *Session) playbackDone(ev eventabi.Event) error {
	t, err := s.signalledTurn(ev)
	if t == nil || !t.awaiting || t.played {
		return err
	}
	t.played = true
	s.record(TimelineRecord{Type: "playback_done", TurnID: t.id})
	s.maybeCommit(t)
	return nil
}

// signalledTurn checks a transport's output signal: one without a turn
// is invalid, one for a fenced turn is rejected with ErrFenced (invariant
// 10). It returns the active turn the signal is for, or nil when it is
// for no active turn (late, or for another turn), which changes nothing.
func (s *Session) signalledTurn(ev eventabi.Event) (*turn, error) {
	if ev.TurnID == "" {
		return nil, &eventabi.ValidationError{Kind: eventabi.ErrInvalidEvent, Field: "turn_id", Type: ev.Type, Msg: "output signal without turn"}
	}
	if s.fenced.Has(ev.TurnID) {
		s.stats.PostFenceSignals++
		return nil, fmt.Errorf("%w: %s for turn %s", ErrFenced, ev.Type, ev.TurnID)
	}
	if t := s.turn; t != nil && t.id == ev.TurnID {
		return t, nil
	}
	return nil, nil
}

// outputSignal handles the transport's output_accepted / playback_started:
// after the turn's fence they are invalid (invariant 10) and rejected with
// ErrFenced; for the active turn the first of each kind is recorded.
func (s *Session) outputSignal(ev eventabi.Event) error {
	t, err := s.signalledTurn(ev)
	if t == nil || t.signalled[ev.Type] {
		return err
	}
	if t.signalled == nil {
		t.signalled = map[eventabi.Type]bool{}
	}
	t.signalled[ev.Type] = true
	typ := "output_accepted"
	if ev.Type == eventabi.TypePlaybackStarted {
		typ = "playback_started"
	}
	s.record(TimelineRecord{Type: typ, TurnID: t.id})
	return nil
}
