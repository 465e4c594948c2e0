package livekit

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rspp/rspp/test/testenv"
	"github.com/rspp/rspp/transports/livekit/lkclient"
)

var adminSocket = regexp.MustCompile(`admin socket (\S+)`)

func countTurns(ms []lkclient.Received, state string) int {
	n := 0
	for _, m := range ms {
		if m.Type == "turn" && m.State == state {
			n++
		}
	}
	return n
}

// TestHotUpgradeDuringCalls: `rspp upgrade` of the TTS provider while
// two rooms are in a call: no room drops, no turn fails, and turns after
// the upgrade are served by the new binary.
func TestHotUpgradeDuringCalls(t *testing.T) {
	requireEnv(t)
	ctx := context.Background()
	w := startWorker(t, "upgrade")
	m := adminSocket.FindStringSubmatch(w.Output())
	if m == nil {
		t.Fatalf("no admin socket in output:\n%s", w.Output())
	}
	rooms := []string{"upg-1", "upg-2"}
	cs := joinAll(t, "upgrade", rooms)
	phrases := []string{"hello there", "what time is it", "goodbye"}
	say := func(turn int) {
		var wg sync.WaitGroup
		for i, room := range rooms {
			c := cs[room]
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.Say(synth(t, phrases[(turn+i)%len(phrases)]))
				if _, err := c.WaitFor(ctx, 90*time.Second, func(ms []lkclient.Received) bool { return countTurns(ms, "commit") >= turn+1 }); err != nil {
					t.Errorf("room %s turn %d: %v", room, turn+1, err)
				}
			}()
		}
		wg.Wait()
	}
	say(0)
	// The upgrade lands while the second turns are under way.
	newBin := filepath.Join(t.TempDir(), "espeak-2")
	raw, err := os.ReadFile(bins.Provider["espeak"])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(newBin, raw, 0o755); err != nil {
		t.Fatal(err)
	}
	upgraded := make(chan string, 1)
	go func() {
		time.Sleep(500 * time.Millisecond)
		out, err := exec.Command(bins.RSPP, "upgrade", "--socket", m[1], "--provider", "espeak", "--binary", newBin).CombinedOutput()
		if err != nil {
			t.Errorf("rspp upgrade: %v\n%s", err, out)
		}
		upgraded <- string(out)
	}()
	say(1)
	out := <-upgraded
	if !strings.Contains(out, "upgraded espeak") {
		t.Fatalf("upgrade said: %s", out)
	}
	say(2)
	if procs := testenv.ProcsUnder(filepath.Dir(newBin)); len(procs) == 0 {
		t.Errorf("no process of the new binary %s runs after the upgrade", newBin)
	}
	if strings.Contains(w.Output(), "livekit session closed") {
		t.Fatalf("a session closed during the upgrade:\n%s", tail(w.Output(), 3000))
	}
	for _, room := range rooms {
		ms := cs[room].Messages()
		if n := countTurns(ms, "abort"); n != 0 {
			t.Errorf("room %s: %d turns aborted: %s", room, n, lkclient.Summary(ms))
		}
		cs[room].Close()
	}
	_ = w.Stop(30 * time.Second)
	recs, err := testenv.ReadTimeline(w.Timeline)
	if err != nil {
		t.Fatal(err)
	}
	if err := testenv.CheckTerminals(recs); err != nil {
		t.Fatal(err)
	}
	t.Logf("upgrade during calls: %s; %d turns, none failed", strings.TrimSpace(out), len(testenv.Turns(recs)))
}
