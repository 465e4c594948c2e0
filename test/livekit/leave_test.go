package livekit

import (
	"context"
	"testing"
	"time"

	lkp "github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"

	"github.com/rspp/rspp/test/lkenv"
	"github.com/rspp/rspp/test/testenv"
)

// TestSessionEndsMidTurn: a participant that leaves while the agent
// replies, and a room deleted while the agent replies, each end their
// session with exactly one terminal for the open turn; the worker goes on
// serving other rooms.
func TestSessionEndsMidTurn(t *testing.T) {
	requireEnv(t)
	ctx := context.Background()
	w := startWorker(t, "midturn")
	cs := joinAll(t, "midturn", []string{"leave-1", "delete-1", "after-1"})
	for _, room := range []string{"leave-1", "delete-1"} {
		cs[room].Say(synth(t, "tell me a joke"))
	}
	for _, room := range []string{"leave-1", "delete-1"} {
		if _, err := cs[room].WaitFor(ctx, 60*time.Second, hasType("audio_start")); err != nil {
			t.Fatalf("%s: %v", room, err)
		}
	}
	cs["leave-1"].Close()
	rc := lksdk.NewRoomServiceClient(lkenv.HTTPURL(), apiKey, apiSecret)
	if _, err := rc.DeleteRoom(ctx, &lkp.DeleteRoomRequest{Room: "delete-1"}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := w.WaitOutput(30*time.Second, "livekit session closed"); err != nil {
			t.Fatal(err)
		}
	}
	// The worker still serves.
	c := cs["after-1"]
	c.Say(synth(t, "hello there"))
	if _, err := c.WaitFor(ctx, 60*time.Second, hasTurn("commit")); err != nil {
		t.Fatalf("room after the others ended: %v", err)
	}
	c.Close()
	_ = w.Stop(30 * time.Second)
	recs, err := testenv.ReadTimeline(w.Timeline)
	if err != nil {
		t.Fatal(err)
	}
	if err := testenv.CheckTerminals(recs); err != nil {
		t.Fatal(err)
	}
	reasons := map[string]string{}
	for _, r := range recs {
		if r.Type == "session_close" {
			reasons[r.SessionID] = r.Reason
		}
	}
	aborted := 0
	for _, tu := range testenv.Turns(recs) {
		if tu.Aborts == 1 {
			aborted++
		}
	}
	if aborted < 2 {
		t.Errorf("%d turns aborted, want the two cut mid-reply; sessions closed: %v", aborted, reasons)
	}
	t.Logf("sessions closed: %v", reasons)
}
