#!/usr/bin/env node
// An RSPP node written in JavaScript on the Node.js SDK (sdk/node): it
// echoes every text input as "node.js: <text>". test/isolation runs it
// under the trusted and the tenant (sealed) profile, on both plugin
// channels; the SDK does the handshake (with AutoMTLS when the host asks
// for it), rspp.v1.Node, credits and cancel.
'use strict';

const { serve, TEXT_DELTA } = require('@rspp/node-sdk');

serve({
  info: () => ({
    name: 'echo-node', kind: 'custom', version: '1.0.0-js', inputWindow: 64,
    accepts: [TEXT_DELTA], emits: [TEXT_DELTA],
  }),
  async invoke(call) {
    for await (const ev of call.inputs()) {
      if (ev.text) call.emitText(TEXT_DELTA, `node.js: ${ev.text.text}`);
    }
  },
});
