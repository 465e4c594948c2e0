package kernel

import (
	"strconv"

	"github.com/rspp/rspp/kernel/eventabi"
)

// RK-09: the session's placement lease, as the kernel sees it. The
// session was opened under SessionConfig.Epoch (the lease's epoch, taken
// before the first turn_open). Authority is asked, without blocking, for
// the current epoch on every ingress event and before every egress event;
// the first answer that differs is the loss of authority: it is recorded
// (authority_lost), the active turn aborts with reason stale_epoch behind
// its fence, and from then on
//   - no turn opens (pre_turn_reject stale_epoch),
//   - data-lane ingress reaches no turn (counted in Stats.StaleEpoch),
//   - egress of the stale epoch dies at the fence: counted in
//     Stats.StaleEgressDropped and recorded once per turn as egress_drop
//     with reason stale_epoch and its count.
//
// The answer is an injected input like the clock: a replay feeds back the
// recorded authority_lost at the same point.

// ReasonStaleEpoch is the abort reason (and egress_drop reason) of a turn
// whose session lost its lease.
const ReasonStaleEpoch = "stale_epoch"

// EpochRequirer is an optional Authority: when RequireEpoch reports true,
// node outputs must carry the session's epoch; an unstamped output (epoch
// 0, a plugin SDK that predates stamping) is rejected like a stale one.
type EpochRequirer interface {
	RequireEpoch() bool
}

// authorityHeld reports whether the session still holds its lease; the
// first time it does not, the loss is handled (see above).
func (s *Session) authorityHeld(at string) bool {
	if s.authorityLost {
		return false
	}
	a := s.cfg.Authority
	if a == nil {
		return true
	}
	cur := a.CurrentEpoch(s.cfg.SessionID)
	if cur == s.cfg.Epoch {
		return true
	}
	s.authorityLost = true
	s.currentEpoch = cur
	s.stats.AuthorityLost++
	s.record(TimelineRecord{Type: "authority_lost", Reason: ReasonStaleEpoch, Attrs: map[string]string{
		"epoch": strconv.FormatUint(s.cfg.Epoch, 10), "current_epoch": strconv.FormatUint(cur, 10), "at": at}})
	if t := s.turn; t != nil {
		t.staleEpoch = true
		s.cancelTurn(t, ReasonStaleEpoch)
	}
	if s.pending != nil {
		s.pending = nil
		s.preTurnReject(ReasonStaleEpoch, s.staleAttrs())
	}
	return false
}

// ingressAuthority is the ingress check of data-lane input (audio,
// speech start/end): without the lease it is counted stale; it reaches no
// turn, since none can open (propose checks again) and the one that was
// active has been aborted. Control input (cancel, session close, output
// signals) is not checked so that the session can still end.
func (s *Session) ingressAuthority(ev *eventabi.Event) {
	if s.cfg.Authority == nil || ev.Lane == eventabi.LaneControl && ev.Type != eventabi.TypeSpeechStart && ev.Type != eventabi.TypeSpeechEnd {
		return
	}
	if !s.authorityHeld("ingress") {
		s.stats.StaleEpoch++
	}
}

// staleAttrs are the attrs of a pre_turn_reject for a stale epoch.
func (s *Session) staleAttrs() map[string]string {
	return map[string]string{"epoch": strconv.FormatUint(s.cfg.Epoch, 10), "current_epoch": strconv.FormatUint(s.currentEpoch, 10)}
}

// egressAuthority is the egress fence's lease check for one egress event
// of turn t: false means it was dropped (counted, recorded).
func (s *Session) egressAuthority(t *turn) bool {
	if s.authorityHeld("egress") {
		return true
	}
	s.dropStaleEgress(t)
	return false
}

// dropStaleEgress counts one egress event of a turn of a stale epoch.
func (s *Session) dropStaleEgress(t *turn) {
	s.stats.StaleEgressDropped++
	s.stats.EgressDropped++
	t.egressDropped++
	if t.egressDropped == 1 && !t.dropRecorded {
		s.dropPending = append(s.dropPending, t)
	}
}

// requireEpoch: node outputs must be stamped with the session's epoch.
func (s *Session) requireEpoch() bool {
	r, ok := s.cfg.Authority.(EpochRequirer)
	return ok && r.RequireEpoch()
}
