// The RSPP page: one WebSocket session with `rspp serve --listen` (see
// transports/websocket/PROTOCOL.md). The microphone goes out as 16 kHz
// frames from the rspp-capture worklet; agent audio comes in tagged by
// `audio_start{turn}` and is played by the rspp-playback worklet, whose
// small buffer a `fence{turn}` flushes at once. The page reports back what
// it played (`playback`), and keeps a record of it for tests
// (window.rsppTest).

const RATE = 16000;
const FRAME_BYTES = 640; // 20 ms of 16 kHz s16le
const MS_PER_SAMPLE = 1000 / RATE;

// The page's own speech detector, for client-side numbers only (the
// server decides turns): a frame is voiced above VAD_DB; speech starts
// after VAD_ONSET voiced frames and ends after VAD_HANG quiet ones.
const VAD_DB = -40;
const VAD_ONSET = 3;
const VAD_HANG = 20;

const POSITION_EVERY_MS = 500; // playback position reports
const DONE_AFTER_MS = 300; // drained this long with no new frame: the turn's audio is done
const MAX_SEND_BUFFER = 64 * 1024; // bytes queued in the socket before mic frames are shed
const MAX_RECORDED_SAMPLES = RATE * 300; // played audio kept for tests, all turns

const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);
const ui = {
  start: $('start'),
  stop: $('stop'),
  status: $('status'),
  timeline: $('timeline'),
  conversation: $('conversation'),
  numbers: $('numbers'),
  error: $('error'),
  micLevel: $('mic-level'),
  agentLevel: $('agent-level'),
  youSpeaking: $('you-speaking'),
  agentSpeaking: $('agent-speaking'),
};

// Session state. Everything here is touched only from the page's main
// thread (event handlers), so it needs no locking.
const S = {
  ws: null,
  ctx: null,
  stream: null,
  capture: null,
  playback: null,
  session: '',
  ready: false,
  closed: null, // {code, reason}
  errors: [],
  // performance.now() - context time, the smallest seen: maps the audio
  // thread's frame counter onto the page clock (within one render batch).
  clockOffset: Infinity,
  turns: new Map(), // turn id -> Turn
  order: [], // turn ids in order of first sight
  audioTurn: null, // turn of the binary frames now arriving
  fences: [],
  speech: [], // client-detected user speech {start, end}
  vad: { voiced: 0, quiet: 0, firstVoiced: 0, lastVoiced: 0, on: false },
  counts: { micSent: 0, micShed: 0, micBeforeReady: 0, audioIn: 0, orphanAudio: 0, afterFence: 0, refused: 0, overflow: 0, badAudio: 0 },
  recorded: 0,
  agentPlayingTurn: null,
};

class Turn {
  constructor(id) {
    this.id = id;
    this.states = []; // {state, reason, latency_ms, at}
    this.transcript = '';
    this.final = false;
    this.reply = '';
    this.framesIn = 0;
    this.framesAfterFence = 0;
    this.pcm = []; // Int16Array chunks handed to the output
    this.pcmTrimmed = false;
    this.played = []; // {frame, n, at}
    this.playedSamples = 0;
    this.firstPlayedAt = null;
    this.lastPlayedEnd = null;
    this.samplesAfterFence = 0; // handed out after the worklet applied the fence: must stay 0
    this.fence = null; // {reason, receivedAt, appliedAt, dropped, seq}
    this.startedSent = false;
    this.lastPosition = 0;
    this.done = false;
    this.lastFrameAt = 0;
    this.doneTimer = 0;
    this.el = null;
    this.convEl = null;
  }

  get state() {
    return this.states.length ? this.states[this.states.length - 1].state : '';
  }

  summary() {
    const user = userSpeechBefore(this.firstPlayedAt ?? this.fence?.receivedAt ?? performance.now());
    const s = {
      turn: this.id,
      states: this.states.map((x) => ({ ...x })),
      transcript: this.transcript,
      final: this.final,
      reply: this.reply,
      frames_in: this.framesIn,
      frames_after_fence: this.framesAfterFence,
      played_samples: this.playedSamples,
      played_chunks: this.played.map((x) => ({ ...x })),
      first_played_at: this.firstPlayedAt,
      last_played_end: this.lastPlayedEnd,
      samples_after_fence: this.samplesAfterFence,
      fence: this.fence ? { ...this.fence } : null,
      done: this.done,
      pcm_trimmed: this.pcmTrimmed,
      first_audio_ms: null,
      barge_in: null,
    };
    if (user && user.end != null && this.firstPlayedAt != null && this.firstPlayedAt >= user.end) {
      s.first_audio_ms = this.firstPlayedAt - user.end;
    }
    if (this.fence) s.barge_in = bargeIn(this);
    return s;
  }
}

// bargeIn measures, for a fenced turn, from the start of the user speech
// that interrupted it (the latest the page heard before the fence) to the
// fence message and to the end of the last sample of the turn handed to
// the output.
function bargeIn(t) {
  const f = t.fence;
  let onset = null;
  for (const u of S.speech) if (u.start <= f.receivedAt) onset = u.start;
  if (S.vad.on && S.vad.firstVoiced <= f.receivedAt) onset = S.vad.firstVoiced;
  if (onset == null) return null;
  return {
    speech_start: onset,
    to_fence_ms: f.receivedAt - onset,
    to_last_sample_ms: t.lastPlayedEnd == null ? null : t.lastPlayedEnd - onset,
    played_before: t.lastPlayedEnd != null && t.lastPlayedEnd > onset,
  };
}

function userSpeechBefore(at) {
  let last = null;
  for (const u of S.speech) if (u.start <= at) last = u;
  return last;
}

// turn returns the record of a turn, made on first sight. Ids are kept as
// strings whatever JSON type the server used.
function turn(id) {
  id = String(id);
  let t = S.turns.get(id);
  if (!t) {
    t = new Turn(id);
    S.turns.set(id, t);
    S.order.push(id);
  }
  return t;
}

function ctxMs(frame) {
  return S.clockOffset + (frame / S.ctx.sampleRate) * 1000;
}

function noteClock(m) {
  if (typeof m.currentTime === 'number') {
    const off = performance.now() - m.currentTime * 1000;
    if (off < S.clockOffset) S.clockOffset = off;
  }
}

function fail(msg) {
  S.errors.push(msg);
  ui.error.textContent = msg;
  ui.error.hidden = false;
}

function setStatus(text, live) {
  ui.status.textContent = text;
  ui.status.classList.toggle('live', !!live);
}

function send(obj) {
  if (S.ws && S.ws.readyState === WebSocket.OPEN) S.ws.send(JSON.stringify(obj));
}

// ---- starting and stopping ----

async function start() {
  ui.start.disabled = true;
  ui.error.hidden = true;
  try {
    S.ctx = new AudioContext({ latencyHint: 'interactive' });
    await S.ctx.audioWorklet.addModule(new URL('worklet.js', import.meta.url));
    const processing = params.get('processing') !== 'off';
    S.stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: processing, noiseSuppression: processing, autoGainControl: processing },
    });
    if (S.ctx.state !== 'running') await S.ctx.resume();
    S.playback = new AudioWorkletNode(S.ctx, 'rspp-playback', { numberOfInputs: 0, numberOfOutputs: 1, outputChannelCount: [1] });
    S.playback.port.onmessage = (e) => onPlayback(e.data);
    S.playback.connect(S.ctx.destination);
    S.capture = new AudioWorkletNode(S.ctx, 'rspp-capture', { numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [1] });
    S.capture.port.onmessage = (e) => onCapture(e.data);
    S.ctx.createMediaStreamSource(S.stream).connect(S.capture);
    // The capture node outputs silence; connecting it keeps it rendered.
    S.capture.connect(S.ctx.destination);
  } catch (err) {
    fail(`audio: ${err.name || 'Error'}: ${err.message}`);
    await stopAudio();
    ui.start.disabled = false;
    return;
  }
  connect();
  ui.stop.disabled = false;
}

function connect() {
  const url = params.get('ws') || `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/ws`;
  setStatus('connecting…');
  const ws = new WebSocket(url);
  ws.binaryType = 'arraybuffer';
  S.ws = ws;
  ws.onopen = () => {
    const start = { type: 'start', sample_rate: RATE, channels: 1 };
    if (params.get('tenant')) start.tenant = params.get('tenant');
    ws.send(JSON.stringify(start));
    setStatus('opening session…');
  };
  ws.onmessage = (e) => {
    if (typeof e.data === 'string') onControl(e.data);
    else onAudio(e.data);
  };
  ws.onclose = (e) => {
    S.ready = false;
    S.closed = { code: e.code, reason: e.reason };
    setStatus(`closed (${e.code}${e.reason ? ': ' + e.reason : ''})`);
    if (e.code !== 1000 && e.code !== 1005) fail(`connection closed: ${e.code} ${e.reason}`);
    stopAudio();
    ui.start.disabled = false;
    ui.stop.disabled = true;
  };
  ws.onerror = () => setStatus('connection error');
}

async function stop() {
  send({ type: 'stop' });
  if (S.ws) S.ws.close(1000, 'user stopped');
  await stopAudio();
}

async function stopAudio() {
  if (S.stream) S.stream.getTracks().forEach((t) => t.stop());
  S.stream = null;
  if (S.ctx && S.ctx.state !== 'closed') await S.ctx.close();
}

// ---- server messages ----

function onControl(text) {
  let m;
  try {
    m = JSON.parse(text);
  } catch {
    fail(`server sent invalid JSON: ${text.slice(0, 80)}`);
    return;
  }
  switch (m.type) {
    case 'ready':
      S.ready = true;
      S.session = m.session;
      setStatus(`live · session ${m.session}`, true);
      break;
    case 'turn': {
      const t = turn(m.turn);
      t.states.push({ state: m.state, reason: m.reason || '', latency_ms: m.latency_ms ?? null, at: performance.now() });
      break;
    }
    case 'transcript': {
      const t = turn(m.turn);
      t.transcript = m.text;
      t.final = !!m.final;
      break;
    }
    case 'reply': {
      const t = turn(m.turn);
      t.reply = m.text;
      break;
    }
    case 'audio_start':
      S.audioTurn = turn(m.turn).id;
      break;
    case 'fence':
      onFence(m);
      break;
    case 'error':
      fail(`server: ${m.reason}`);
      break;
    default:
      // Newer servers may send more; ignoring is forward compatible.
      break;
  }
  render();
}

function onAudio(buf) {
  if (buf.byteLength !== FRAME_BYTES) {
    S.counts.badAudio++;
    return;
  }
  S.counts.audioIn++;
  if (S.audioTurn == null) {
    S.counts.orphanAudio++;
    return;
  }
  const t = turn(S.audioTurn);
  if (t.fence) {
    // The protocol forbids this; count it so a test can hold the server to it.
    t.framesAfterFence++;
    S.counts.afterFence++;
    return;
  }
  t.framesIn++;
  t.lastFrameAt = performance.now();
  if (t.done) t.done = false; // more audio of it after a pause
  S.playback.port.postMessage({ type: 'frame', turn: t.id, pcm: buf }, [buf]);
}

function onFence(m) {
  const t = turn(m.turn);
  if (t.fence) return;
  const seq = S.fences.length;
  t.fence = { reason: m.reason || '', receivedAt: performance.now(), appliedAt: null, dropped: null, seq };
  // Straight to the audio thread: it drops the turn's buffered frames at
  // its next render quantum and refuses the turn from then on.
  if (S.playback) S.playback.port.postMessage({ type: 'fence', turn: t.id, seq });
  if (S.audioTurn === t.id) S.audioTurn = null;
  S.fences.push({ turn: t.id, reason: t.fence.reason, received_at: t.fence.receivedAt, applied_at: null, dropped: null });
}

// ---- audio thread messages ----

function onCapture(m) {
  noteClock(m);
  if (m.type !== 'mic') return;
  const at = ctxMs(m.frame);
  vad(m.rms, at);
  ui.micLevel.style.width = `${Math.min(100, m.rms * 300)}%`;
  if (!S.ready) {
    S.counts.micBeforeReady++;
    return;
  }
  if (S.ws.bufferedAmount > MAX_SEND_BUFFER) {
    S.counts.micShed++;
    return;
  }
  S.ws.send(m.pcm);
  S.counts.micSent++;
}

function vad(rms, at) {
  const v = S.vad;
  const db = rms > 0 ? 20 * Math.log10(rms) : -120;
  if (db > VAD_DB) {
    if (v.voiced === 0) v.firstVoiced = at;
    v.voiced++;
    v.quiet = 0;
    v.lastVoiced = at + 20;
    if (!v.on && v.voiced >= VAD_ONSET) {
      v.on = true;
      ui.youSpeaking.classList.add('on');
    }
  } else {
    v.quiet++;
    if (!v.on) v.voiced = 0;
    if (v.on && v.quiet >= VAD_HANG) {
      v.on = false;
      v.voiced = 0;
      S.speech.push({ start: v.firstVoiced, end: v.lastVoiced });
      ui.youSpeaking.classList.remove('on');
      render();
    }
  }
}

function onPlayback(m) {
  noteClock(m);
  switch (m.type) {
    case 'played': {
      const t = turn(m.turn);
      const pcm = new Int16Array(m.pcm);
      const at = ctxMs(m.frame);
      const n = pcm.length;
      if (t.fence && t.fence.appliedAt != null) t.samplesAfterFence += n;
      t.played.push({ frame: m.frame, n, at, after_fence_message: t.fence ? at - t.fence.receivedAt : null });
      t.pcm.push(pcm);
      S.recorded += n;
      trimRecorded();
      if (t.firstPlayedAt == null) t.firstPlayedAt = at;
      t.lastPlayedEnd = at + n * MS_PER_SAMPLE;
      t.playedSamples += n;
      S.agentPlayingTurn = t.id;
      ui.agentSpeaking.classList.add('on');
      let e = 0;
      for (let i = 0; i < n; i++) e += pcm[i] * pcm[i];
      ui.agentLevel.style.width = `${Math.min(100, (Math.sqrt(e / n) / 32768) * 300)}%`;
      reportPlayback(t);
      break;
    }
    case 'fenced': {
      const t = turn(m.turn);
      t.fence.appliedAt = ctxMs(m.frame);
      t.fence.dropped = m.dropped;
      const f = S.fences[m.seq];
      if (f) {
        f.applied_at = t.fence.appliedAt;
        f.dropped = m.dropped;
      }
      if (S.agentPlayingTurn === t.id) agentQuiet();
      finishTurn(t);
      render();
      break;
    }
    case 'drained':
      agentQuiet();
      for (const id of S.order) {
        const t = S.turns.get(id);
        if (t.startedSent && !t.done && !t.fence) scheduleDone(t);
      }
      break;
    case 'refused':
      S.counts.refused++;
      break;
    case 'overflow':
      S.counts.overflow++;
      break;
  }
}

function agentQuiet() {
  S.agentPlayingTurn = null;
  ui.agentSpeaking.classList.remove('on');
  ui.agentLevel.style.width = '0';
}

function reportPlayback(t) {
  const played = Math.round(t.playedSamples * MS_PER_SAMPLE);
  if (!t.startedSent) {
    t.startedSent = true;
    t.lastPosition = played;
    send({ type: 'playback', turn: t.id, event: 'started', played_ms: 0 });
    render();
  } else if (played - t.lastPosition >= POSITION_EVERY_MS) {
    t.lastPosition = played;
    send({ type: 'playback', turn: t.id, event: 'position', played_ms: played });
  }
}

// scheduleDone reports `done` once the turn's audio has stopped arriving:
// the buffer drained and no frame of the turn came for DONE_AFTER_MS.
function scheduleDone(t) {
  clearTimeout(t.doneTimer);
  t.doneTimer = setTimeout(() => {
    if (t.done || t.fence) return;
    if (performance.now() - t.lastFrameAt < DONE_AFTER_MS) {
      scheduleDone(t);
      return;
    }
    if (S.agentPlayingTurn === t.id) return; // playing again; the next drain reschedules
    finishTurn(t);
    render();
  }, DONE_AFTER_MS);
}

function finishTurn(t) {
  if (t.done) return;
  t.done = true;
  clearTimeout(t.doneTimer);
  if (t.startedSent) send({ type: 'playback', turn: t.id, event: 'done', played_ms: Math.round(t.playedSamples * MS_PER_SAMPLE) });
}

function trimRecorded() {
  for (const id of S.order) {
    if (S.recorded <= MAX_RECORDED_SAMPLES) return;
    const t = S.turns.get(id);
    for (const c of t.pcm) S.recorded -= c.length;
    if (t.pcm.length) t.pcmTrimmed = true;
    t.pcm = [];
    t.played = []; // its chunk log goes with it: a long session stays bounded
  }
}

// ---- rendering ----

let renderQueued = false;
function render() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    draw();
  });
}

function fmtMs(v) {
  return v == null ? '–' : `${Math.round(v)} ms`;
}

function draw() {
  for (const id of S.order) {
    const t = S.turns.get(id);
    const s = t.summary();
    if (!t.el) {
      t.el = document.createElement('div');
      t.el.className = 'turn';
      t.el.dataset.turn = id;
      ui.timeline.appendChild(t.el);
      t.el.scrollIntoView({ inline: 'end', block: 'nearest' });
    }
    const last = t.states[t.states.length - 1];
    t.el.className = `turn ${t.state}`;
    const server = t.states.find((x) => x.latency_ms != null);
    const lines = [
      `<div class="id">turn ${esc(id)}</div>`,
      `<div class="states">${t.states.map((x) => esc(x.state)).join(' → ') || '…'}</div>`,
    ];
    if (last && last.state === 'abort') lines.push(`<div class="reason">${esc(last.reason)}</div>`);
    lines.push(`<div class="lat">latency ${fmtMs(server ? server.latency_ms : null)}</div>`);
    if (t.playedSamples) lines.push(`<div class="lat">played ${fmtMs(t.playedSamples * MS_PER_SAMPLE)}</div>`);
    if (s.first_audio_ms != null) lines.push(`<div class="lat">first audio ${fmtMs(s.first_audio_ms)}</div>`);
    if (s.barge_in) lines.push(`<div class="lat">barge-in: fence ${fmtMs(s.barge_in.to_fence_ms)}, last sample ${fmtMs(s.barge_in.to_last_sample_ms)}</div>`);
    t.el.innerHTML = lines.join('');

    if (!t.transcript && !t.reply) continue;
    if (!t.convEl) {
      t.convEl = document.createElement('li');
      t.convEl.dataset.turn = id;
      ui.conversation.appendChild(t.convEl);
    }
    const agent = t.reply
      ? `<div class="agent${t.fence ? ' fenced' : ''}"><span class="who">agent</span><span class="text reply">${esc(t.reply)}</span>${t.fence ? `<span class="note">interrupted (${esc(t.fence.reason)}) after ${(t.playedSamples / RATE).toFixed(1)} s</span>` : ''}</div>`
      : '';
    t.convEl.innerHTML =
      `<div class="user"><span class="who">you</span><span class="text transcript${t.final ? '' : ' interim'}">${esc(t.transcript || '…')}</span></div>` + agent;
  }
  const c = S.counts;
  let lastBarge = null;
  let lastFirst = null;
  for (const id of S.order) {
    const s = S.turns.get(id).summary();
    if (s.barge_in && s.barge_in.to_last_sample_ms != null) lastBarge = s.barge_in;
    if (s.first_audio_ms != null) lastFirst = s.first_audio_ms;
  }
  const rows = [
    ['first audio (your speech end → agent audio), last turn', fmtMs(lastFirst)],
    ['barge-in (your speech start → agent stopped), last', lastBarge ? fmtMs(lastBarge.to_last_sample_ms) : '–'],
    ['session', S.session || '–'],
    ['context rate', S.ctx ? `${S.ctx.sampleRate} Hz` : '–'],
    ['mic frames sent', c.micSent],
    ['mic frames shed (socket full)', c.micShed],
    ['agent frames received', c.audioIn],
    ['frames after a fence (must be 0)', c.afterFence],
    ['fences', S.fences.length],
  ];
  ui.numbers.innerHTML = rows.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(String(v))}</dd>`).join('');
}

function esc(s) {
  return String(s).replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]);
}

// ---- test hooks: read-only views of what the page did ----

function base64(chunks) {
  let n = 0;
  for (const c of chunks) n += c.length;
  const all = new Int16Array(n);
  let o = 0;
  for (const c of chunks) {
    all.set(c, o);
    o += c.length;
  }
  const bytes = new Uint8Array(all.buffer); // little-endian on every platform browsers run on
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

window.rsppTest = {
  status: () => ({
    ready: S.ready,
    session: S.session,
    closed: S.closed,
    errors: [...S.errors],
    context_rate: S.ctx ? S.ctx.sampleRate : 0,
    counts: { ...S.counts },
  }),
  turns: () => S.order.map((id) => S.turns.get(id).summary()),
  // playedPCM: the 16 kHz s16le samples of turn handed to the audio
  // output, in order, as base64.
  playedPCM: (id) => (S.turns.has(String(id)) ? base64(S.turns.get(String(id)).pcm) : ''),
  fences: () => S.fences.map((f) => ({ ...f })),
  speech: () => S.speech.map((u) => ({ ...u })).concat(S.vad.on ? [{ start: S.vad.firstVoiced, end: null }] : []),
  now: () => performance.now(),
};

ui.start.addEventListener('click', start);
ui.stop.addEventListener('click', stop);
if (params.get('autostart') === '1') start();
draw();
