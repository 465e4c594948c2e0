package bench

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/providers/speechtest"
	"github.com/rspp/rspp/test/testenv"
)

func ms(n int64) int64 { return n * int64(time.Millisecond) }

// Supervisor-side figures come from the server's own records, per session:
// a barge-in's speech start to the fence and to the fenced turn's last
// frame out, and speech end to the turn's first frame out.
func TestSupervisorFiguresFromTimeline(t *testing.T) {
	rec := func(session, turn, typ, reason string, at int64) kernel.TimelineRecord {
		return kernel.TimelineRecord{SessionID: session, TurnID: turn, Type: typ, Reason: reason, MonoNanos: at}
	}
	recs := []kernel.TimelineRecord{
		rec("a", "t1", "turn_open", "", ms(0)),
		rec("a", "t1", "speech_end", "", ms(1000)),
		rec("b", "u1", "speech_end", "", ms(1005)), // another session interleaved
		rec("a", "t1", "playback_started", "", ms(1400)),
		rec("b", "u1", "playback_started", "", ms(1305)),
		rec("a", "", "speech_start", "", ms(2000)),
		rec("a", "t1", "cancel", "barge_in", ms(2001)),
		rec("a", "t1", "fence", "barge_in", ms(2001)),
		rec("a", "t1", "playout_end", "fenced", ms(2030)),
		// b: a barge-in without a speech_start record: the cancel's time;
		// the playout's record comes between the kernel's cancel and fence
		// (the order rspp serve writes them in).
		rec("b", "u1", "cancel", "barge_in", ms(3000)),
		rec("b", "u1", "playout_end", "fenced", ms(3010)),
		rec("b", "u1", "fence", "barge_in", ms(3002)),
		// a cancel for another reason is no barge-in.
		rec("a", "t2", "cancel", "timeout", ms(4000)),
		rec("a", "t2", "fence", "timeout", ms(4000)),
		rec("a", "t2", "playout_end", "fenced", ms(4100)),
	}
	s, notes := supervisorFigures(recs)
	d := func(v ...int64) []time.Duration {
		var out []time.Duration
		for _, x := range v {
			out = append(out, time.Duration(ms(x)))
		}
		return out
	}
	if !slices.Equal(s.firstAudio, d(400, 300)) || !slices.Equal(s.fence, d(1, 2)) || !slices.Equal(s.lastFrame, d(30, 10)) {
		t.Errorf("first audio %v, fence %v, last frame %v", s.firstAudio, s.fence, s.lastFrame)
	}
	if len(notes) != 0 {
		t.Errorf("notes %v", notes)
	}
	// Without the playout's records the figures that need them are empty,
	// and a note says which record is missing.
	s, notes = supervisorFigures(recs[:2])
	if len(s.firstAudio)+len(s.lastFrame) != 0 || len(notes) != 2 || !strings.Contains(strings.Join(notes, " "), "playout_end") {
		t.Errorf("samples %+v, notes %v", s, notes)
	}
}

func TestLiveMissingBinariesAreNamed(t *testing.T) {
	c := LiveConfig{BinDir: t.TempDir(), Replies: "x"}
	if m := c.missing(); !strings.Contains(m, "rspp") {
		t.Fatalf("missing() = %q, want the absent rspp binary named", m)
	}
}

// MeasureLive end to end, short: a real rspp serve --listen with the real
// plugin processes, one client then three. Checks the shape and that every
// figure has samples, not the numbers.
func TestMeasureLiveAgainstRealServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts rspp serve --listen with real plugins for ~20 s")
	}
	if err := speechtest.Missing(); err != nil {
		t.Skipf("speech tools unavailable: %v", err)
	}
	dir := t.TempDir()
	bins, err := testenv.Build(dir)
	if err != nil {
		t.Fatal(err)
	}
	root := testenv.MustModuleRoot(t)
	stt, err := testenv.BuildExternalNode(dir, "energystt", filepath.Join(root, "test", "wsload", "testdata", "nodes", "energystt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "bench"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(stt, filepath.Join(dir, "bench", "energystt")); err != nil {
		t.Fatal(err)
	}
	l, err := MeasureLive(context.Background(), LiveConfig{BinDir: bins.Dir, Replies: filepath.Join(root, "examples", "replies.yaml"),
		Clients: 3, Phase: 8 * time.Second, TempDir: t.TempDir(), Phrase: "what time is it", BargeIns: 2})
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	printLive(&sb, l)
	t.Log("\n" + sb.String())
	if len(l.Phases) != 2 || l.Phases[0].Clients != 1 || l.Phases[1].Clients != 3 {
		t.Fatalf("phases %+v", l.Phases)
	}
	for _, p := range l.Phases {
		if p.FirstAudioClient.N == 0 || p.FenceClient.N == 0 || p.FenceLastFrameClient.N == 0 || p.EgressLateness.N == 0 ||
			p.FirstAudioSupervisor.N == 0 || p.FenceSupervisor.N == 0 {
			t.Errorf("%d clients: a figure without samples: %+v", p.Clients, p)
		}
		if p.Fenced == 0 || p.SessionsLost != 0 || p.WrongTerminals != 0 || p.FramesAfterFence != 0 {
			t.Errorf("%d clients: %+v", p.Clients, p)
		}
	}
	for _, k := range []string{"first_audio_client loaded/single", "fence_client loaded/single", "first_audio client/supervisor"} {
		if r, ok := l.Ratios[k]; !ok || r.P50 == 0 {
			t.Errorf("ratio %q = %+v (present %v)", k, r, ok)
		}
	}
	if left := testenv.ProcsUnder(dir); len(left) > 0 {
		t.Errorf("processes left behind: %v", left)
	}
}
