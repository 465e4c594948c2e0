package kernel

import (
	"strconv"
	"testing"
)

func TestFencedTurnsBoundedOldestForgotten(t *testing.T) {
	var f FencedTurns // zero value: DefaultFencedTurns
	for i := range DefaultFencedTurns + 1 {
		f.Add("t"+strconv.Itoa(i), "barge_in")
	}
	if f.Has("t0") {
		t.Error("the oldest of DefaultFencedTurns+1 turns is still remembered")
	}
	if r, ok := f.Reason("t1"); !ok || r != "barge_in" {
		t.Errorf("t1: %q %v", r, ok)
	}
	g := FencedTurns{Max: 2}
	g.Add("a", "first")
	g.Add("a", "second")
	g.Add("b", "x")
	if r, _ := g.Reason("a"); r != "first" {
		t.Errorf("a second Add replaced the reason: %q", r)
	}
	g.Add("c", "x")
	if g.Has("a") || !g.Has("b") || !g.Has("c") {
		t.Errorf("Max 2 after a, b, c: a %v b %v c %v", g.Has("a"), g.Has("b"), g.Has("c"))
	}
}
