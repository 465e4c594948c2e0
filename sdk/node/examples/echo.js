#!/usr/bin/env node
// An example RSPP node on the Node.js SDK: every text input comes back as
// "node.js: <text>", as the same event type; audio frames come back as
// they are (make bench measures the frame round trip through it). Build
// the SDK first
// (npm ci && npm run build in sdk/node).
'use strict';

const { serve, TEXT_DELTA, TEXT_FINAL, AUDIO_FRAME } = require('..');

serve({
  info: () => ({
    name: 'echo-node', kind: 'custom', version: '1.0.0',
    accepts: [TEXT_DELTA, TEXT_FINAL, AUDIO_FRAME], emits: [TEXT_DELTA, TEXT_FINAL, AUDIO_FRAME],
  }),
  async invoke(call) {
    for await (const ev of call.inputs()) {
      if (ev.text) call.emitText(ev.type, `node.js: ${ev.text.text}`, ev.text.final);
      else if (ev.audio) call.emit({ type: ev.type, audio: ev.audio });
    }
  },
});
