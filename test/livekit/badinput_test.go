package livekit

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rspp/rspp/providers/speechtest"
	"github.com/rspp/rspp/test/testenv"
	"github.com/rspp/rspp/transports/livekit/lkclient"
)

// serveOnce runs rspp serve --livekit-url url with the given secret and
// returns its exit error and output (it must fail fast).
func serveOnce(t *testing.T, url, secret string) (error, string) {
	t.Helper()
	dir := t.TempDir()
	state, err := os.MkdirTemp("", "rs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(state) })
	cfg, err := testenv.WriteConfig(dir, bins, testenv.ConfigOptions{StateDir: state})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bins.RSPP, "serve", "--config", cfg, "--livekit-url", url, "--livekit-opus", opusBin)
	cmd.Env = append(os.Environ(), "LIVEKIT_API_KEY="+apiKey, "LIVEKIT_API_SECRET="+secret)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("rspp serve did not fail within 60 s; output:\n%s", out)
	}
	return err, string(out)
}

// TestBadServerSettings: a wrong API secret and an unreachable server
// stop rspp serve at start with an error naming what was wrong (never
// the secret), and leave no plugin process behind.
func TestBadServerSettings(t *testing.T) {
	requireEnv(t)
	const wrong = "not-the-secret-of-this-server-0123456789"
	for _, tc := range []struct {
		name, url, secret, want string
	}{
		{"wrong secret", wsURL(), wrong, "server refused the API key/secret"},
		{"unreachable", fmt.Sprintf("ws://%s:1", serverIP), apiSecret, "server unreachable"},
		{"bad scheme", "ftp://" + serverIP, apiSecret, "scheme \"ftp\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err, out := serveOnce(t, tc.url, tc.secret)
			if err == nil {
				t.Fatalf("rspp serve succeeded; output:\n%s", out)
			}
			if !strings.Contains(out, tc.want) {
				t.Errorf("output does not say %q:\n%s", tc.want, out)
			}
			if strings.Contains(out, tc.secret) {
				t.Errorf("output prints the API secret:\n%s", out)
			}
			if left := testenv.ProcsUnder(bins.Dir); len(left) > 0 {
				t.Errorf("processes left behind: %v", left)
			}
		})
	}
}

// TestVideoAndStereoParticipant: a participant that publishes a video
// track and speaks through a 48 kHz stereo Opus track: the video is not
// taken (the participant is told so), the stereo audio is downmixed and
// resampled, and the turn commits with the right transcript and reply.
func TestVideoAndStereoParticipant(t *testing.T) {
	requireEnv(t)
	ctx := context.Background()
	w := startWorker(t, "oddtracks")
	if err := dispatch(ctx, "odd", "oddtracks"); err != nil {
		t.Fatal(err)
	}
	c := join(t, "odd", "erin", lkclient.Options{Stereo: true, Video: true})
	if _, err := c.WaitFor(ctx, 30*time.Second, hasType("ready")); err != nil {
		t.Fatal(err)
	}
	c.Say(synth(t, "what time is it"))
	ms, err := c.WaitFor(ctx, 60*time.Second, hasTurn("commit"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := findMsg(ms, func(m lkclient.Received) bool {
		return m.Type == "notice" && strings.Contains(m.Reason, "video") && strings.Contains(m.Reason, "ignored")
	}); !ok {
		t.Errorf("no notice that the video track is ignored: %s", lkclient.Summary(ms))
	}
	if _, ok := findMsg(ms, func(m lkclient.Received) bool { return m.Type == "transcript" && m.Text == "what time is it" }); !ok {
		t.Errorf("stereo 48 kHz speech not recognised: %s", lkclient.Summary(ms))
	}
	if _, ok := findMsg(ms, func(m lkclient.Received) bool { return m.Type == "reply" && m.Text == "it is time to test" }); !ok {
		t.Errorf("no reply: %s", lkclient.Summary(ms))
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
}

// TestCrowdedRoom: ten participants join one room and talk at once. The
// policy: the first MaxSessionsPerRoom (4) get a session each, the other
// six are told the room is full; every session's turn commits with its
// own speaker's words.
func TestCrowdedRoom(t *testing.T) {
	requireEnv(t)
	speechtest.Require(t)
	ctx := context.Background()
	w := startWorker(t, "crowd")
	if err := dispatch(ctx, "crowd", "crowd"); err != nil {
		t.Fatal(err)
	}
	phrases := []string{"what time is it", "hello there", "tell me a joke", "goodbye"}
	var cs []*lkclient.Client
	for i := range 10 {
		cs = append(cs, join(t, "crowd", fmt.Sprintf("crowd%d", i), lkclient.Options{}))
	}
	// Everyone has either a session or the refusal.
	var served, refused []int
	for i, c := range cs {
		ms, err := c.WaitFor(ctx, 60*time.Second, func(ms []lkclient.Received) bool { return hasType("ready")(ms) || hasType("error")(ms) })
		if err != nil {
			t.Fatalf("participant %d: %v", i, err)
		}
		if hasType("ready")(ms) {
			served = append(served, i)
		} else {
			e, _ := findMsg(ms, func(m lkclient.Received) bool { return m.Type == "error" })
			if !strings.Contains(e.Reason, "room full") || !strings.Contains(e.Reason, "at most 4") {
				t.Errorf("participant %d: error %q, want the room-full policy", i, e.Reason)
			}
			refused = append(refused, i)
		}
	}
	if len(served) != 4 || len(refused) != 6 {
		t.Fatalf("served %v, refused %v: want 4 and 6", served, refused)
	}
	// All ten talk at once.
	for i, c := range cs {
		c.Say(synth(t, phrases[i%len(phrases)]))
	}
	var wg sync.WaitGroup
	errs := make([]error, len(cs))
	for _, i := range served {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ms, err := cs[i].WaitFor(ctx, 90*time.Second, hasTurn("commit"))
			if err != nil {
				errs[i] = err
				return
			}
			if _, ok := findMsg(ms, func(m lkclient.Received) bool { return m.Type == "transcript" && m.Text == phrases[i%len(phrases)] }); !ok {
				errs[i] = fmt.Errorf("transcript is not %q: %s", phrases[i%len(phrases)], lkclient.Summary(ms))
			}
		}()
	}
	wg.Wait()
	for _, i := range served {
		if errs[i] != nil {
			t.Errorf("participant %d: %v", i, errs[i])
		}
	}
	for _, i := range refused {
		if slices.ContainsFunc(cs[i].Messages(), func(m lkclient.Received) bool { return m.Type == "turn" }) {
			t.Errorf("refused participant %d got turn messages", i)
		}
	}
	for _, c := range cs {
		c.Close()
	}
	_ = w.Stop(30 * time.Second)
	recs, err := testenv.ReadTimeline(w.Timeline)
	if err != nil {
		t.Fatal(err)
	}
	if err := testenv.CheckTerminals(recs); err != nil {
		t.Fatal(err)
	}
}
