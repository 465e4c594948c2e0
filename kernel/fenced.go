package kernel

// DefaultFencedTurns is how many fenced turns a FencedTurns remembers when
// its Max is not set: enough to reject a late output signal of any turn
// still in a transport buffer.
const DefaultFencedTurns = 64

// FencedTurns is the one record of fenced turns: the kernel's (to reject
// output and output signals after the fence), the egress gate's
// (kernel/fence) and the file sink's. It remembers the last Max turns,
// oldest forgotten first, with the reason each was fenced. The zero value
// is ready; it is not safe for concurrent use (callers hold their lock).
type FencedTurns struct {
	Max     int // 0: DefaultFencedTurns
	reasons map[string]string
	order   []string
}

// Add fences turn (a second Add keeps the first reason).
func (f *FencedTurns) Add(turn, reason string) {
	if f.reasons == nil {
		f.reasons = map[string]string{}
	}
	if _, ok := f.reasons[turn]; ok {
		return
	}
	f.reasons[turn] = reason
	f.order = append(f.order, turn)
	max := f.Max
	if max <= 0 {
		max = DefaultFencedTurns
	}
	if len(f.order) > max {
		delete(f.reasons, f.order[0])
		f.order = f.order[1:]
	}
}

// Reason says why turn was fenced, ok false when it is not (or no longer
// remembered).
func (f *FencedTurns) Reason(turn string) (reason string, ok bool) {
	reason, ok = f.reasons[turn]
	return reason, ok
}

// Has says whether turn is fenced.
func (f *FencedTurns) Has(turn string) bool {
	_, ok := f.reasons[turn]
	return ok
}
