// AudioWorklet processors of the RSPP page. They run on the audio rendering
// thread, so they never allocate per sample and never wait on anything.
//
//   rspp-capture   microphone -> 16 kHz mono s16le frames of 320 samples
//                  (20 ms), posted to the page with their level.
//   rspp-playback  agent frames (16 kHz) -> the audio output, through a
//                  small buffer. A fence drops every buffered frame of a
//                  turn at once and refuses that turn's frames afterwards.
//                  What is handed to the output is posted back per turn so
//                  the page can report (and a test can check) what was
//                  actually played.

const RATE = 16000; // the wire rate, both ways
const FRAME = 320; // samples in 20 ms at RATE

// Resampler converts a stream at rate `from` to rate `to`, one sample at a
// time. Going down it low-passes with a windowed-sinc FIR (cutoff at 0.45 of
// the lower rate) evaluated only at the output instants; going up it
// interpolates linearly. Equal rates pass through.
class Resampler {
  constructor(from, to) {
    this.from = from;
    this.to = to;
    this.step = from / to; // input samples per output sample
    this.pos = 0; // position of the next output sample, in input samples, relative to the newest input
    this.taps = null;
    if (from > to) {
      const n = 97; // odd: a centred, linear-phase filter
      const fc = (0.45 * to) / from; // cutoff, cycles per input sample
      const h = new Float32Array(n);
      let sum = 0;
      for (let i = 0; i < n; i++) {
        const m = i - (n - 1) / 2;
        const sinc = m === 0 ? 2 * fc : Math.sin(2 * Math.PI * fc * m) / (Math.PI * m);
        const w = 0.42 - 0.5 * Math.cos((2 * Math.PI * i) / (n - 1)) + 0.08 * Math.cos((4 * Math.PI * i) / (n - 1));
        h[i] = sinc * w;
        sum += h[i];
      }
      for (let i = 0; i < n; i++) h[i] /= sum;
      this.taps = h;
    }
    const hist = this.taps ? this.taps.length + 2 : 2;
    this.hist = new Float32Array(hist); // ring of the newest inputs
    this.head = 0; // index of the newest input in hist
    this.count = 0; // inputs seen (saturates at hist length)
    this.t = 0; // fractional position of the next output between the two newest inputs
  }

  // at returns input sample k steps back from the newest (k = 0 newest).
  at(k) {
    const n = this.hist.length;
    return this.hist[(this.head - k + n * 2) % n];
  }

  // filtered returns the low-passed input k steps back.
  filtered(k) {
    if (!this.taps) return this.at(k);
    const h = this.taps;
    let acc = 0;
    for (let i = 0; i < h.length; i++) acc += h[i] * this.at(k + i);
    return acc;
  }

  // push feeds one input sample and calls emit for every output sample it
  // completes.
  push(x, emit) {
    if (this.from === this.to) {
      emit(x);
      return;
    }
    this.head = (this.head + 1) % this.hist.length;
    this.hist[this.head] = x;
    if (this.count < this.hist.length) this.count++;
    // Outputs fall at input positions t, t+step, ... measured from the
    // previous input (0) to the newest (1).
    while (this.t <= 1) {
      const a = this.filtered(1);
      const b = this.filtered(0);
      emit(a + (b - a) * this.t);
      this.t += this.step;
    }
    this.t -= 1;
  }
}

function toS16(x) {
  const v = Math.round(x * 32768);
  return v > 32767 ? 32767 : v < -32768 ? -32768 : v;
}

class CaptureProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.rs = new Resampler(sampleRate, RATE);
    this.frame = new Int16Array(FRAME);
    this.n = 0;
    this.energy = 0;
    this.startFrame = currentFrame; // context frame where the current 20 ms frame began
    this.port.postMessage({ type: 'capture-ready', sampleRate, currentTime });
    this.emit = (y) => {
      const s = toS16(y);
      if (this.n === 0) this.startFrame = this.quantumFrame;
      this.frame[this.n++] = s;
      this.energy += s * s;
      if (this.n === FRAME) {
        const rms = Math.sqrt(this.energy / FRAME) / 32768;
        const buf = this.frame.buffer;
        this.port.postMessage({ type: 'mic', pcm: buf, rms, frame: this.startFrame, currentTime }, [buf]);
        this.frame = new Int16Array(FRAME);
        this.n = 0;
        this.energy = 0;
      }
    };
  }

  process(inputs) {
    const input = inputs[0];
    if (!input || input.length === 0) return true;
    const len = input[0].length;
    this.quantumFrame = currentFrame;
    for (let i = 0; i < len; i++) {
      let x = 0;
      for (let c = 0; c < input.length; c++) x += input[c][i];
      this.rs.push(x / input.length, this.emit);
    }
    return true;
  }
}

// Playback buffer limits, in 20 ms frames. The server paces audio at real
// time after a short pre-roll, so the buffer stays small; PREROLL frames
// are gathered before a turn starts to play, to ride out network jitter.
const PREROLL = 3;
const MAX_FRAMES = 25;
const PREROLL_WAIT = 0.1; // s: start with fewer frames once this has passed

class PlaybackProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.queue = []; // {turn, pcm: Int16Array}
    this.fenced = new Set();
    this.playing = false;
    this.firstQueuedAt = -1;
    this.cur = null; // frame being played
    this.curPos = 0; // next sample of cur
    // Upsampling by linear interpolation: the output lies between prev and
    // next (16 kHz samples), frac of the way; step is how far one output
    // sample advances.
    this.step = RATE / sampleRate;
    this.prev = 0;
    this.next = 0;
    this.nextTurn = null; // turn of next; null when next is silence
    this.frac = 0;
    // What was handed to the output, batched per turn and posted about
    // every 20 ms (and at a turn change, a fence or an underrun).
    this.outTurn = null;
    this.out = new Int16Array(FRAME * 2);
    this.outN = 0;
    this.outFrame = 0;
    this.port.onmessage = (e) => this.onMessage(e.data);
    this.port.postMessage({ type: 'playback-ready', sampleRate, currentTime });
  }

  onMessage(m) {
    switch (m.type) {
      case 'frame': {
        if (this.fenced.has(m.turn)) {
          this.port.postMessage({ type: 'refused', turn: m.turn, currentTime });
          return;
        }
        if (!this.playing && this.queue.length === 0) this.firstQueuedAt = currentTime;
        this.queue.push({ turn: m.turn, pcm: new Int16Array(m.pcm) });
        if (this.queue.length > MAX_FRAMES) {
          const dropped = this.queue.shift();
          this.port.postMessage({ type: 'overflow', turn: dropped.turn, currentTime });
        }
        break;
      }
      case 'fence': {
        this.fenced.add(m.turn);
        this.flushOut();
        let dropped = 0;
        this.queue = this.queue.filter((f) => {
          if (f.turn !== m.turn) return true;
          dropped++;
          return false;
        });
        if (this.cur && this.cur.turn === m.turn) {
          this.cur = null;
          dropped++;
        }
        if (this.nextTurn === m.turn) {
          // The sample being interpolated towards is of the fenced turn:
          // fall to silence and take the next sample from what is left.
          this.prev = this.next = 0;
          this.nextTurn = null;
          if (!this.cur && this.queue.length === 0) this.stop();
        }
        this.port.postMessage({ type: 'fenced', turn: m.turn, seq: m.seq, dropped, frame: currentFrame, currentTime });
        break;
      }
      case 'forget': // the page no longer expects frames of this turn
        this.fenced.delete(m.turn);
        break;
    }
  }

  // pull moves the next buffered 16 kHz sample into next, recording it as
  // handed to the output; it returns false on underrun.
  pull(frame) {
    if (!this.cur || this.curPos >= FRAME) {
      this.cur = this.queue.shift() || null;
      this.curPos = 0;
      if (!this.cur) return false;
    }
    const s = this.cur.pcm[this.curPos++];
    this.next = s;
    this.nextTurn = this.cur.turn;
    this.record(this.cur.turn, s, frame);
    return true;
  }

  stop() {
    this.playing = false;
    this.prev = this.next = 0;
    this.nextTurn = null;
    this.frac = 0;
    this.firstQueuedAt = this.queue.length ? currentTime : -1;
    this.flushOut();
    this.port.postMessage({ type: 'drained', currentTime });
  }

  record(turn, s, frame) {
    if (turn !== this.outTurn || this.outN === this.out.length) {
      this.flushOut();
      this.outTurn = turn;
      this.outFrame = frame;
    }
    if (this.outN === 0) this.outFrame = frame;
    this.out[this.outN++] = s;
  }

  flushOut() {
    if (this.outN === 0) return;
    const pcm = this.out.slice(0, this.outN);
    this.port.postMessage({ type: 'played', turn: this.outTurn, pcm: pcm.buffer, frame: this.outFrame, currentTime }, [pcm.buffer]);
    this.outN = 0;
  }

  process(_inputs, outputs) {
    const out = outputs[0];
    const ch = out[0];
    if (!this.playing && this.queue.length > 0) {
      const waited = this.firstQueuedAt >= 0 && currentTime - this.firstQueuedAt >= PREROLL_WAIT;
      if (this.queue.length >= PREROLL || waited) {
        // Start from silence (prev = 0) towards the first sample.
        this.playing = true;
        this.prev = 0;
        this.frac = 0;
        this.pull(currentFrame);
      }
    }
    for (let i = 0; i < ch.length; i++) {
      let y = 0;
      if (this.playing) {
        if (this.nextTurn === null && !this.pull(currentFrame + i)) {
          this.stop();
        } else {
          y = (this.prev + (this.next - this.prev) * this.frac) / 32768;
          this.frac += this.step;
          while (this.frac >= 1) {
            this.frac -= 1;
            this.prev = this.next;
            if (!this.pull(currentFrame + i + 1)) {
              this.stop();
              break;
            }
          }
        }
      }
      for (let c = 0; c < out.length; c++) out[c][i] = y;
    }
    if (this.outN >= FRAME) this.flushOut();
    return true;
  }
}

registerProcessor('rspp-capture', CaptureProcessor);
registerProcessor('rspp-playback', PlaybackProcessor);
