package wsload

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

// tone is ms of a 440 Hz sine at amplitude amp (0..1) as s16le PCM.
func tone(ms int, amp float64) []byte {
	n := SampleRate * ms / 1000
	b := make([]byte, 2*n)
	for i := range n {
		v := amp * 32767 * math.Sin(2*math.Pi*440*float64(i)/SampleRate)
		binary.LittleEndian.PutUint16(b[2*i:], uint16(int16(v)))
	}
	return b
}

func silence(ms int) []byte { return make([]byte, 2*SampleRate*ms/1000) }

// testUtterance: 100 ms silence, 600 ms of tone, 100 ms silence.
func testUtterance(t *testing.T) Utterance {
	t.Helper()
	pcm := slices.Concat(silence(100), tone(600, 0.3), silence(100))
	u, err := NewUtterance("tone", pcm, DefaultVoicedDB)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestNewUtteranceLocatesSpeech(t *testing.T) {
	u := testUtterance(t)
	if len(u.Frames) != 40 || u.FirstVoiced != 5 || u.LastVoiced != 34 {
		t.Fatalf("frames %d, voiced %d..%d; want 40, 5..34", len(u.Frames), u.FirstVoiced, u.LastVoiced)
	}
	// -40 dBFS is an amplitude of 0.01 RMS: a sine of peak 0.005 is below.
	_, err := NewUtterance("quiet", slices.Concat(silence(100), tone(200, 0.005)), DefaultVoicedDB)
	if !errors.Is(err, ErrNoSpeech) || !strings.Contains(err.Error(), "quiet") {
		t.Fatalf("quiet utterance: err %v, want ErrNoSpeech naming it", err)
	}
}

func TestLoadUtteranceNamesBadFile(t *testing.T) {
	_, err := LoadUtterance("/nonexistent/x.wav", DefaultVoicedDB)
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/x.wav") {
		t.Fatalf("err %v, want one naming the file", err)
	}
}

func TestDecodeServerRejectsMalformed(t *testing.T) {
	for name, in := range map[string]string{
		"not json":          `{"type":`,
		"unknown type":      `{"type":"bogus"}`,
		"turn without id":   `{"type":"turn","state":"open"}`,
		"turn bad state":    `{"type":"turn","turn":"t1","state":"maybe"}`,
		"fence without id":  `{"type":"fence"}`,
		"ready no session":  `{"type":"ready","protocol":1}`,
		"ready bad version": `{"type":"ready","session":"s","protocol":2}`,
	} {
		var pe *ProtocolError
		if _, err := decodeServer([]byte(in)); !errors.As(err, &pe) {
			t.Errorf("%s: err %v, want a *ProtocolError", name, err)
		}
	}
	if m, err := decodeServer([]byte(`{"type":"turn","turn":"t1","state":"abort","reason":"barge_in"}`)); err != nil || m.Reason != "barge_in" {
		t.Fatalf("valid turn message: %+v, %v", m, err)
	}
}

// The client's bookkeeping with arrival times given: lateness is measured
// per audio_start run from its first frame, frames after a fence count
// against the fenced turn, frames before any run are unattributed.
func TestClientBookkeeping(t *testing.T) {
	c := &client{byID: map[string]*Turn{}, waiting: 0, ctrl: make(chan Message, 8)}
	c.res.Utterances = []Spoken{{Name: "u"}}
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	text := func(ms int, s string) {
		if err := c.text([]byte(s), at(ms)); err != nil {
			t.Fatal(err)
		}
	}
	frame := func(ms int) { c.frame(make([]byte, FrameBytes), at(ms)) }

	frame(0) // before any run
	text(1, `{"type":"turn","turn":"a","state":"open"}`)
	text(2, `{"type":"audio_start","turn":"a"}`)
	for _, ms := range []int{10, 30, 55, 70, 110} { // frame 2 is 5 ms late, frame 4 is 20 ms late
		frame(ms)
	}
	text(120, `{"type":"audio_start","turn":"a"}`) // a new run: a new reference
	frame(200)
	frame(230) // 10 ms late
	text(240, `{"type":"fence","turn":"a","reason":"barge_in"}`)
	frame(250) // after the fence, before any new run: a's
	text(255, `{"type":"turn","turn":"a","state":"abort","reason":"barge_in"}`)
	text(260, `{"type":"turn","turn":"b","state":"open"}`)
	text(270, `{"type":"audio_start","turn":"a"}`)
	frame(280) // a run of the fenced turn: a's, after its fence
	text(290, `{"type":"audio_start","turn":"b"}`)
	for _, ms := range []int{300, 300, 300, 320, 340, 375} { // a pre-roll of 3, then paced, one 15 ms gap
		frame(ms)
	}
	c.frame(make([]byte, 10), at(380)) // wrong size

	// b's run stays ahead of its schedule: no lateness, though a gap.
	want := []time.Duration{0, 5 * time.Millisecond, 0, 20 * time.Millisecond, 10 * time.Millisecond, 0, 0, 0, 0, 0}
	if !slices.Equal(c.res.Lateness, want) {
		t.Errorf("lateness %v, want %v", c.res.Lateness, want)
	}
	// Gaps over 20 ms: a's first run 20, 25, 15, 40 ms apart; its second
	// 30; b's 0, 0, 20, 20, 35.
	wantGaps := []time.Duration{0, 5 * time.Millisecond, 0, 20 * time.Millisecond, 10 * time.Millisecond, 0, 0, 0, 0, 15 * time.Millisecond}
	if !slices.Equal(c.res.Gaps, wantGaps) {
		t.Errorf("gaps %v, want %v", c.res.Gaps, wantGaps)
	}
	a, b := c.byID["a"], c.byID["b"]
	if a.Frames != 7 || a.FramesAfterFence != 2 || !a.Fenced || a.FenceAt != at(240) || a.LastFrame != at(230) || a.FirstFrame != at(10) {
		t.Errorf("turn a: %+v", a)
	}
	if a.Utterance != 0 || c.res.Utterances[0].Turn != "a" || b.Utterance != -1 {
		t.Errorf("turn a should belong to utterance 0 and b to none: a %d, b %d, utterance turn %q", a.Utterance, b.Utterance, c.res.Utterances[0].Turn)
	}
	if a.Aborts != 1 || a.AbortReason != "barge_in" || b.Frames != 6 || b.Terminals() != 0 {
		t.Errorf("a: %d aborts (%q); b: %d frames, %d terminals", a.Aborts, a.AbortReason, b.Frames, b.Terminals())
	}
	if c.res.UnattributedFrames != 1 || len(c.res.ProtocolErrors) != 1 {
		t.Errorf("unattributed %d, protocol errors %v; want 1 and 1", c.res.UnattributedFrames, c.res.ProtocolErrors)
	}
	// One playback "started" per turn that got audio.
	if n := len(c.ctrl); n != 2 {
		t.Errorf("%d playback messages queued, want 2", n)
	}
	if err := c.text([]byte(`{"type":"error","reason":"binary frame of 3 bytes"}`), at(400)); err == nil || !strings.Contains(err.Error(), "3 bytes") {
		t.Errorf("error message: %v, want one carrying the server's reason", err)
	}
}

// Summarize classifies barge-ins by what happened to the interrupted turn
// and takes latencies from the client's clock.
func TestSummarizeClassifiesBargeIns(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	cr := &ClientResult{
		Session: "s",
		Turns: []*Turn{
			{ID: "t1", Opens: 1, Commits: 0, Aborts: 1, AbortReason: "barge_in", Frames: 30, FirstFrame: at(1500), LastFrame: at(2080), Fenced: true, FenceAt: at(2150)},
			{ID: "t2", Opens: 1, Commits: 1, Frames: 50, FirstFrame: at(3000), LastFrame: at(4000)},
			{ID: "t3", Opens: 1, Commits: 1, Frames: 50, FirstFrame: at(5000), LastFrame: at(6000)},
			{ID: "t4", Opens: 1, Commits: 1, Aborts: 1},
			{ID: "t5", Opens: 1, Commits: 1},
		},
		Utterances: []Spoken{
			{Turn: "t1", SpeechStart: at(0), SpeechEnd: at(1000)},
			{Turn: "t2", BargeIn: true, BargedTurn: "t1", SpeechStart: at(2000), SpeechEnd: at(2600)},
			{Turn: "t3", BargeIn: true, BargedTurn: "t2", SpeechStart: at(3900), SpeechEnd: at(4600)}, // t2 played on: unfenced
			{Turn: "t4", BargeIn: true, BargedTurn: "t3", SpeechStart: at(6100), SpeechEnd: at(6700)}, // t3 had ended: late
			{Turn: "", SpeechStart: at(7000), SpeechEnd: at(7500)},
		},
		Lateness: []time.Duration{0, time.Millisecond},
	}
	lost := &ClientResult{Session: "x", Err: errors.New("connection lost: EOF")}
	r := Summarize([]*ClientResult{cr, lost})
	if r.Sessions != 2 || r.Lost != 1 || !strings.Contains(r.LostReasons[0], "EOF") {
		t.Errorf("sessions %d lost %d %v", r.Sessions, r.Lost, r.LostReasons)
	}
	if r.BargeIns != 2 || r.BargeInsFenced != 1 || r.BargeInsUnfenced != 1 || r.BargeInsLate != 1 || r.NoTurn != 1 {
		t.Errorf("barge-ins %d fenced %d unfenced %d late %d, no turn %d; want 2 1 1 1 1", r.BargeIns, r.BargeInsFenced, r.BargeInsUnfenced, r.BargeInsLate, r.NoTurn)
	}
	if !slices.Equal(r.Samples.Fence, []time.Duration{150 * time.Millisecond}) || !slices.Equal(r.Samples.FenceLastFrame, []time.Duration{80 * time.Millisecond}) {
		t.Errorf("fence %v, last frame %v; want [150ms] and [80ms]", r.Samples.Fence, r.Samples.FenceLastFrame)
	}
	// First audio: t1 500 ms after 1000, t2 400 ms after 2600, t3 400 ms after 4600.
	if want := []time.Duration{500 * time.Millisecond, 400 * time.Millisecond, 400 * time.Millisecond}; !slices.Equal(r.Samples.FirstAudio, want) {
		t.Errorf("first audio %v, want %v", r.Samples.FirstAudio, want)
	}
	if len(r.WrongTerminals) != 1 || !strings.Contains(r.WrongTerminals[0], "t4") {
		t.Errorf("wrong terminals %v, want t4's", r.WrongTerminals)
	}
	if r.Turns != 5 || r.FencedTurns != 1 || r.Frames != 130 || r.Lateness.N != 2 {
		t.Errorf("turns %d fenced %d frames %d lateness n %d", r.Turns, r.FencedTurns, r.Frames, r.Lateness.N)
	}
	if err := r.Check(); !errors.Is(err, ErrCheck) || !strings.Contains(err.Error(), "1 of 2 sessions lost") || !strings.Contains(err.Error(), "1 turns without exactly one terminal") {
		t.Errorf("Check: %v", err)
	}
}

func TestStatsOfNearestRank(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	s := StatsOf(d)
	if s.N != 100 || s.P50 != 50 || s.P99 != 99 || s.Max != 100 || s.Mean != 50.5 {
		t.Fatalf("%+v", s)
	}
	if d[0] != 100*time.Millisecond {
		t.Fatal("StatsOf reordered its input")
	}
	if (StatsOf(nil) != Stats{}) {
		t.Fatal("empty input should give zero stats")
	}
}

// The fake server behaves: the client's checks pass, barge-ins happen and
// are fenced, and every figure has samples. No timing is judged.
func TestAgainstWellBehavedFakeServer(t *testing.T) {
	url := startFakeServer(t, &fakeServer{})
	rep, _ := Run(context.Background(), Config{URL: url, Clients: 2, Utterances: []Utterance{testUtterance(t)},
		Duration: 5 * time.Second, Gap: 100 * time.Millisecond, BargeInEvery: 2, BargeInAfter: 200 * time.Millisecond, Ramp: 50 * time.Millisecond})
	var sb strings.Builder
	rep.Print(&sb)
	t.Log("\n" + sb.String())
	if err := rep.Check(); err != nil {
		t.Fatal(err)
	}
	if rep.BargeInsFenced == 0 || rep.BargeInsUnfenced != 0 || rep.FencedTurns != rep.BargeInsFenced {
		t.Errorf("barge-ins fenced %d, unfenced %d, fenced turns %d", rep.BargeInsFenced, rep.BargeInsUnfenced, rep.FencedTurns)
	}
	if rep.Committed == 0 || rep.Committed+rep.Aborted != rep.Turns || rep.AbortReasons["barge_in"] != rep.FencedTurns {
		t.Errorf("turns %d: committed %d, aborted %v", rep.Turns, rep.Committed, rep.AbortReasons)
	}
	if rep.FirstAudio.N == 0 || rep.Fence.N != rep.BargeInsFenced || rep.FenceLastFrame.N != rep.BargeInsFenced || rep.Lateness.N == 0 {
		t.Errorf("samples: first audio %d, fence %d, last frame %d, lateness %d", rep.FirstAudio.N, rep.Fence.N, rep.FenceLastFrame.N, rep.Lateness.N)
	}
	if rep.Replies["it is time to test"] != rep.TurnsWithAudio {
		t.Errorf("replies %v for %d turns with audio", rep.Replies, rep.TurnsWithAudio)
	}
}

func TestCountsAudioOfFencedTurnsAfterTheFence(t *testing.T) {
	url := startFakeServer(t, &fakeServer{FramesAfterFence: 3})
	rep, _ := Run(context.Background(), Config{URL: url, Clients: 1, Utterances: []Utterance{testUtterance(t)},
		Duration: 4 * time.Second, Gap: 100 * time.Millisecond, BargeInEvery: 2, BargeInAfter: 200 * time.Millisecond})
	if rep.FencedTurns == 0 {
		t.Fatal("no barge-in was fenced: the test proves nothing")
	}
	if rep.FramesAfterFence != 3*rep.FencedTurns {
		t.Errorf("%d frames after fence for %d fenced turns, want 3 each", rep.FramesAfterFence, rep.FencedTurns)
	}
	if err := rep.Check(); !errors.Is(err, ErrCheck) || !strings.Contains(err.Error(), "after their fence") {
		t.Errorf("Check: %v", err)
	}
}

func TestDoubleCommitIsAWrongTerminal(t *testing.T) {
	url := startFakeServer(t, &fakeServer{DoubleCommit: true})
	rep, _ := Run(context.Background(), Config{URL: url, Clients: 1, Utterances: []Utterance{testUtterance(t)},
		Duration: 3 * time.Second, Gap: 100 * time.Millisecond})
	if rep.Committed == 0 || len(rep.WrongTerminals) != rep.Committed/2 {
		t.Errorf("%d commit messages, wrong terminals %v", rep.Committed, rep.WrongTerminals)
	}
	if err := rep.Check(); !errors.Is(err, ErrCheck) {
		t.Errorf("Check: %v", err)
	}
}

func TestConnectionDroppedByServerIsALostSession(t *testing.T) {
	url := startFakeServer(t, &fakeServer{DropAfter: 1500 * time.Millisecond})
	rep, results := Run(context.Background(), Config{URL: url, Clients: 1, Utterances: []Utterance{testUtterance(t)},
		Duration: 10 * time.Second, Gap: 100 * time.Millisecond})
	if rep.Lost != 1 || !strings.Contains(results[0].Err.Error(), "connection lost") {
		t.Fatalf("lost %d, err %v", rep.Lost, results[0].Err)
	}
}

func TestUnreachableServerIsALostSession(t *testing.T) {
	rep, results := Run(context.Background(), Config{URL: "ws://127.0.0.1:1/ws", Clients: 1, Utterances: []Utterance{testUtterance(t)}, Duration: time.Second})
	if rep.Lost != 1 || !strings.Contains(results[0].Err.Error(), "dial") {
		t.Fatalf("lost %d, err %v", rep.Lost, results[0].Err)
	}
}

// A server whose playout falls behind real time (a frame every 30 ms) shows
// as lateness that grows along each run: the load test's lateness check
// can fail.
func TestSlowPacingShowsAsLateness(t *testing.T) {
	url := startFakeServer(t, &fakeServer{FramePeriod: 30 * time.Millisecond})
	rep, _ := Run(context.Background(), Config{URL: url, Clients: 1, Utterances: []Utterance{testUtterance(t)},
		Duration: 3 * time.Second, Gap: 100 * time.Millisecond})
	if err := rep.Check(); err != nil {
		t.Fatal(err)
	}
	// 40 frames 10 ms behind each: the last is ~390 ms late, the median
	// ~200 ms; far above 20 ms whatever the machine's noise.
	if rep.Lateness.N == 0 || rep.Lateness.P99 < 100 || rep.Gap.P50 < 5 {
		t.Fatalf("lateness %+v, gap %+v: slow pacing not seen", rep.Lateness, rep.Gap)
	}
}
