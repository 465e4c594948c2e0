package browser

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/rspp/rspp/transports/websocket/web"
)

// servePage serves the embedded page files the way the transport does (at
// the root) and opens index.html in a fresh browser; no session is started.
func servePage(t *testing.T) context.Context {
	t.Helper()
	ctx := newBrowser(t, "")
	srv := httptest.NewServer(http.FileServerFS(web.Files))
	t.Cleanup(srv.Close)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/")); err != nil {
		t.Fatalf("open page: %v", err)
	}
	return ctx
}

// captureResult is what the rspp-capture worklet made of one second of a
// sine wave.
type captureResult struct {
	Frames    int     `json:"frames"`
	BadFrames int     `json:"badFrames"`
	RMS       float64 `json:"rms"`
	Crossings int     `json:"crossings"`
	Samples   int     `json:"samples"`
}

// captureJS renders one second of a sine of frequency freq and amplitude
// 0.5 at context rate rate through rspp-capture (offline, so as fast as
// the machine goes) and measures the 16 kHz frames it posts, past the
// first 40 ms (the filter's start).
const captureJS = `(async (rate, freq) => {
  const ctx = new OfflineAudioContext({ numberOfChannels: 1, length: rate, sampleRate: rate });
  await ctx.audioWorklet.addModule('worklet.js');
  const node = new AudioWorkletNode(ctx, 'rspp-capture', { numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [1] });
  const frames = [];
  let bad = 0;
  node.port.onmessage = (e) => {
    if (e.data.type !== 'mic') return;
    if (e.data.pcm.byteLength !== 640) bad++;
    frames.push(new Int16Array(e.data.pcm));
  };
  const osc = new OscillatorNode(ctx, { frequency: freq });
  osc.connect(new GainNode(ctx, { gain: 0.5 })).connect(node);
  node.connect(ctx.destination);
  osc.start();
  await ctx.startRendering();
  await new Promise((r) => setTimeout(r, 300)); // the last port messages
  const all = [];
  for (const f of frames) for (const s of f) all.push(s / 32768);
  const tail = all.slice(640);
  let e = 0, crossings = 0;
  for (let i = 0; i < tail.length; i++) {
    e += tail[i] * tail[i];
    if (i > 0 && (tail[i - 1] < 0) !== (tail[i] < 0)) crossings++;
  }
  return { frames: frames.length, badFrames: bad, rms: Math.sqrt(e / tail.length), crossings, samples: tail.length };
})(%d, %d)`

// TestCaptureResamplesTo16k: whatever the audio context's rate, the
// capture worklet posts 640-byte frames at 16 kHz (50 a second), keeps a
// tone in the speech band at its level and pitch, and filters a tone above
// 8 kHz out instead of folding it into the speech band.
func TestCaptureResamplesTo16k(t *testing.T) {
	ctx := servePage(t)
	cases := []struct {
		rate, freq int
		pass       bool
	}{
		{48000, 1000, true},
		{44100, 1000, true},
		{16000, 1000, true},
		{48000, 3000, true},
		{48000, 12000, false}, // would alias to 4 kHz
		{44100, 10000, false}, // would alias to 6 kHz
	}
	for _, c := range cases {
		var r captureResult
		raw := evaluate[captureResult](t, ctx, sprintf(captureJS, c.rate, c.freq))
		r = raw
		t.Logf("rate %d, tone %d Hz: %d frames, rms %.4f, %d zero crossings in %d samples", c.rate, c.freq, r.Frames, r.RMS, r.Crossings, r.Samples)
		if r.BadFrames != 0 {
			t.Errorf("rate %d: %d frames not 640 bytes", c.rate, r.BadFrames)
		}
		// One second is 50 frames; the filter holds back under one.
		if r.Frames < 49 || r.Frames > 50 {
			t.Errorf("rate %d: %d frames in one second, want 49-50", c.rate, r.Frames)
		}
		want := 0.5 / math.Sqrt2
		if c.pass {
			if math.Abs(r.RMS-want)/want > 0.05 {
				t.Errorf("rate %d, %d Hz: rms %.4f, want %.4f ±5%%", c.rate, c.freq, r.RMS, want)
			}
			// A tone of f Hz crosses zero 2f times a second.
			got := float64(r.Crossings) * 16000 / float64(r.Samples) / 2
			if math.Abs(got-float64(c.freq)) > 0.01*float64(c.freq) {
				t.Errorf("rate %d: a %d Hz tone came out at %.0f Hz", c.rate, c.freq, got)
			}
		} else if r.RMS > want/100 {
			t.Errorf("rate %d, %d Hz: rms %.4f after resampling, want below %.4f (-40 dB)", c.rate, c.freq, r.RMS, want/100)
		}
	}
}

// playbackResult is what the rspp-playback worklet reported.
type playbackResult struct {
	Played        map[string]int `json:"played"`
	AfterFence    map[string]int `json:"afterFence"`
	WrongValue    int            `json:"wrongValue"`
	Dropped       int            `json:"dropped"`
	Refused       int            `json:"refused"`
	Fenced        bool           `json:"fenced"`
	ContextRate   float64        `json:"rate"`
	OutputSamples int            `json:"outputSamples"`
}

// playbackJS queues 25 frames (500 ms, the buffer's limit) of turn A, lets
// it play 60 ms, fences A, then queues 5 more frames of A and 10 of B.
// Each turn's samples carry their own value, so a sample of A played after
// the fence would show.
const playbackJS = `(async () => {
  const ctx = new AudioContext();
  await ctx.audioWorklet.addModule('worklet.js');
  await ctx.resume();
  const node = new AudioWorkletNode(ctx, 'rspp-playback', { numberOfInputs: 0, numberOfOutputs: 1, outputChannelCount: [1] });
  node.connect(ctx.destination);
  const res = { played: { A: 0, B: 0 }, afterFence: { A: 0, B: 0 }, wrongValue: 0, dropped: -1, refused: 0, fenced: false, rate: ctx.sampleRate };
  const value = { A: 1000, B: 2000 };
  node.port.onmessage = (e) => {
    const m = e.data;
    if (m.type === 'played') {
      const pcm = new Int16Array(m.pcm);
      res.played[m.turn] += pcm.length;
      if (res.fenced) res.afterFence[m.turn] += pcm.length;
      for (const s of pcm) if (s !== value[m.turn]) res.wrongValue++;
    } else if (m.type === 'fenced') {
      res.fenced = true;
      res.dropped = m.dropped;
    } else if (m.type === 'refused') {
      res.refused++;
    }
  };
  const frame = (turn) => {
    const a = new Int16Array(320).fill(value[turn]);
    node.port.postMessage({ type: 'frame', turn, pcm: a.buffer }, [a.buffer]);
  };
  for (let i = 0; i < 25; i++) frame('A');
  await new Promise((r) => setTimeout(r, 60));
  node.port.postMessage({ type: 'fence', turn: 'A', seq: 0 });
  for (let i = 0; i < 5; i++) frame('A');
  for (let i = 0; i < 10; i++) frame('B');
  await new Promise((r) => setTimeout(r, 700));
  await ctx.close();
  return res;
})()`

// TestPlaybackFenceFlushesBuffer: a fence drops every buffered frame of
// its turn at once: of turn A, every sample was either played before the
// fence or dropped by it, none is played after it, and frames of A that
// come after the fence are refused; turn B, queued after the fence, plays
// whole.
func TestPlaybackFenceFlushesBuffer(t *testing.T) {
	ctx := servePage(t)
	r := evaluate[playbackResult](t, ctx, playbackJS)
	t.Logf("context %.0f Hz: played A %d, B %d samples; fence dropped %d frames; refused %d; after fence A %d", r.ContextRate, r.Played["A"], r.Played["B"], r.Dropped, r.Refused, r.AfterFence["A"])
	if !r.Fenced {
		t.Fatal("the worklet never acknowledged the fence")
	}
	if r.AfterFence["A"] != 0 {
		t.Errorf("%d samples of fenced turn A handed to the output after the fence", r.AfterFence["A"])
	}
	if r.Dropped < 1 {
		t.Fatalf("the fence dropped no frame: all of A (%d samples) played within 60 ms? (machine stalled; nothing to check)", r.Played["A"])
	}
	// The frame being played when the fence came counts as dropped, so A's
	// played samples lie within one frame of (25 - dropped) frames.
	lo, hi := (25-r.Dropped)*320, (25-r.Dropped+1)*320
	if r.Played["A"] < lo || r.Played["A"] > hi {
		t.Errorf("played %d samples of A with %d of 25 frames dropped, want %d..%d", r.Played["A"], r.Dropped, lo, hi)
	}
	if r.Refused != 5 {
		t.Errorf("refused %d frames of A after the fence, want 5", r.Refused)
	}
	if r.Played["B"] != 10*320 {
		t.Errorf("played %d samples of B, want all %d", r.Played["B"], 10*320)
	}
	if r.WrongValue != 0 {
		t.Errorf("%d samples played under the wrong turn", r.WrongValue)
	}
}
