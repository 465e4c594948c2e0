package transports

import (
	"testing"

	"github.com/rspp/rspp/kernel/eventabi"
)

func TestDropTurnKeepsOtherTurnsInOrder(t *testing.T) {
	q := []eventabi.Event{{ID: "1", TurnID: "a"}, {ID: "2", TurnID: "b"}, {ID: "3", TurnID: "a"}, {ID: "4", TurnID: "c"}}
	kept, n := DropTurn(q, "a")
	if n != 2 || len(kept) != 2 || kept[0].ID != "2" || kept[1].ID != "4" {
		t.Fatalf("DropTurn = %v, %d; want [2 4], 2", kept, n)
	}
	if q[2].ID != "" || q[3].ID != "" {
		t.Fatalf("the tail past the kept frames still holds %v: the dropped frames are not released", q[2:])
	}
}

func TestNoticeMessage(t *testing.T) {
	m, ok := NoticeMessage(Notice{Kind: NoticeTurn, Turn: "t1", State: "commit", LatencyMs: 42})
	if !ok || m.Type != "turn" || m.State != "commit" || m.LatencyMs == nil || *m.LatencyMs != 42 {
		t.Fatalf("commit notice = %+v, %v", m, ok)
	}
	if m, _ := NoticeMessage(Notice{Kind: NoticeTurn, State: "open"}); m.LatencyMs != nil {
		t.Fatalf("open notice carries a latency: %+v", m)
	}
	if _, ok := NoticeMessage(Notice{Kind: "unknown"}); ok {
		t.Fatal("a notice kind clients are not told of became a message")
	}
}
