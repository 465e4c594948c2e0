// Tests of the SDK: the author surface in memory (TestCall, Config) and
// the wire through a real gRPC server on a unix socket, driven by a
// grpc-js client playing the host.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

import { Call, Config, ConfigError, Node, TestCall, TEXT_DELTA, CancelledError } from '../src/index';
import { start, Started } from '../src/serve';
import { unpaddedBase64, makeServerCert } from '../src/tls';

const upper: Node = {
  info: () => ({ name: 'upper', kind: 'custom', version: '1.0.0', accepts: [TEXT_DELTA], emits: [TEXT_DELTA], inputWindow: 4 }),
  async invoke(call: Call) {
    for await (const ev of call.inputs()) {
      if (ev.text) call.emitText(ev.type, ev.text.text.toUpperCase(), ev.text.final);
    }
  },
};

test('TestCall stamps the call ids, lane and schema version on outputs', async () => {
  const c = new TestCall([{ type: TEXT_DELTA, text: { text: 'hi' } }], { id: 'inv-1', sessionId: 's1', turnId: 't1', nodeId: 'n1' });
  await upper.invoke(c, c.signal);
  assert.deepEqual(c.texts(), ['HI']);
  const o = c.outputs[0];
  assert.equal(o.invocationId, 'inv-1');
  assert.equal(o.sessionId, 's1');
  assert.equal(o.nodeId, 'n1');
  assert.equal(o.lane, 'data');
  assert.equal(o.schemaVersion, 1);
  assert.equal(c.consumedInputs, 1);
});

test('emit after cancel throws CancelledError and sends nothing', () => {
  const c = new TestCall([]);
  c.cancel();
  assert.throws(() => c.emitText(TEXT_DELTA, 'late'), CancelledError);
  assert.equal(c.outputs.length, 0);
});

test('Config.decode overlays defaults and names an unknown key', () => {
  const cfg = new Config('n1', '/etc/x', Buffer.from('{"prefix":"a"}'));
  assert.deepEqual(cfg.decode({ prefix: '', n: 1 }), { prefix: 'a', n: 1 });
  const bad = new Config('n1', '', Buffer.from('{"nope":1}'));
  assert.throws(() => bad.decode({ prefix: '' }), (e: Error) => e instanceof ConfigError && /unknown key "nope"/.test(e.message));
  const wrongType = new Config('n1', '', Buffer.from('{"prefix":1}'));
  assert.throws(() => wrongType.decode({ prefix: '' }), /key "prefix" is number, want string/);
  assert.equal(cfg.path('a.txt'), '/etc/x/a.txt');
});

test('the mtls handshake certificate is unpadded base64 of a DER cert with a DNS:localhost SAN', () => {
  const sc = makeServerCert();
  assert.ok(!sc.handshakeCert.endsWith('='));
  const der = Buffer.from(sc.handshakeCert, 'base64');
  assert.equal(unpaddedBase64(der), sc.handshakeCert);
  const x = new crypto.X509Certificate(der);
  assert.match(x.subjectAltName ?? '', /DNS:localhost/);
});

// The host side, for the wire tests.
const protoDir = path.join(__dirname, '..', '..', 'proto');
const rspp = (grpc.loadPackageDefinition(protoLoader.loadSync(path.join(protoDir, 'rspp.proto'),
  { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true })) as any).rspp.v1;

async function serveFor(node: Node): Promise<{ s: Started; client: any; dir: string; close: () => void }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rsdk'));
  let line = '';
  const s = await start(node, { socketDir: dir, clientCert: '', handshake: (l) => { line = l; } });
  assert.equal(line, s.line);
  const client = new rspp.Node(`unix://${s.socket}`, grpc.credentials.createInsecure());
  return {
    s, client, dir,
    close: () => { client.close(); s.server.forceShutdown(); fs.rmSync(dir, { recursive: true, force: true }); },
  };
}

function describe(client: any): Promise<any> {
  return new Promise((res, rej) => client.Describe({}, (err: Error | null, r: any) => (err ? rej(err) : res(r))));
}

/** Collects Data frames from the plugin until pred says stop. */
function until(stream: grpc.ClientDuplexStream<any, any>, pred: (f: any, all: any[]) => boolean): Promise<any[]> {
  const all: any[] = [];
  stream.on('error', () => {}); // the test closes the channel under it
  return new Promise((res, rej) => {
    const t = setTimeout(() => rej(new Error(`timed out; frames: ${JSON.stringify(all.map((f) => f.kind))}`)), 5000);
    stream.on('data', (f: any) => {
      all.push(f);
      if (pred(f, all)) { clearTimeout(t); res(all); }
    });
  });
}

const ev = (text: string) => ({ event_type: TEXT_DELTA, lane: 'LANE_DATA', schema_version: 1, text: { text, final: false } });

test('handshake line and Describe carry every field the runtime checks', async () => {
  const h = await serveFor(upper);
  try {
    const f = h.s.line.split('|');
    assert.equal(f.length, 6);
    assert.deepEqual([f[0], f[1], f[2], f[4], f[5]], ['1', '2', 'unix', 'grpc', '']);
    assert.equal(path.dirname(f[3]), h.dir, 'the socket is directly inside PLUGIN_UNIX_SOCKET_DIR');
    const info = await describe(h.client);
    assert.equal(info.protocol_version, 2);
    assert.equal(info.input_window, 4);
    assert.equal(info.kind, 'custom');
    assert.deepEqual(info.emits, [TEXT_DELTA]);
  } finally { h.close(); }
});

test('credits are granted back as the node consumes inputs; outputs carry the invocation and its epoch', async () => {
  const h = await serveFor(upper);
  try {
    const data = h.client.Data();
    const done = until(data, (f) => f.kind === 'KIND_END');
    data.write({ kind: 'KIND_OPEN', invocation_id: 'i1', session_id: 's1', turn_id: 't1', node_id: 'n1', authority_epoch: 7 });
    for (const w of ['a', 'b', 'c', 'd']) data.write({ kind: 'KIND_EVENT', invocation_id: 'i1', event: ev(w) });
    data.write({ kind: 'KIND_CLOSE_INPUT', invocation_id: 'i1' });
    const frames = await done;
    data.end();
    const credit = frames.filter((f) => f.kind === 'KIND_CREDIT').reduce((n, f) => n + f.credit, 0);
    assert.equal(credit, 4, 'a window of 4, granted in batches of 2');
    const outs = frames.filter((f) => f.kind === 'KIND_EVENT');
    assert.deepEqual(outs.map((f) => f.event.text.text), ['A', 'B', 'C', 'D']);
    for (const o of outs) {
      assert.equal(o.event.invocation_id, 'i1');
      assert.equal(o.event.session_id, 's1');
      assert.equal(o.event.lane, 'LANE_DATA');
      assert.equal(o.event.authority_epoch, '7', 'outputs carry the epoch of their OPEN');
    }
    assert.equal(frames.at(-1).error, null);
  } finally { h.close(); }
});

test('more input than the window ends the invocation as a protocol error', async () => {
  const stalls: Node = {
    info: () => ({ name: 'stall', kind: 'custom', version: '1', inputWindow: 2 }),
    invoke: (_c, signal) => new Promise<void>((res) => signal.addEventListener('abort', () => res())),
  };
  const h = await serveFor(stalls);
  try {
    const data = h.client.Data();
    const done = until(data, (f) => f.kind === 'KIND_END');
    data.write({ kind: 'KIND_OPEN', invocation_id: 'i1' });
    for (const w of ['a', 'b', 'c']) data.write({ kind: 'KIND_EVENT', invocation_id: 'i1', event: ev(w) });
    const frames = await done;
    data.end();
    assert.equal(frames.at(-1).error.kind, 'ERROR_KIND_PROTOCOL');
  } finally { h.close(); }
});

test('cancel ends the invocation at once as cancelled, and nothing is emitted after it', async () => {
  let late: unknown = null;
  const slow: Node = {
    info: () => ({ name: 'slow', kind: 'custom', version: '1' }),
    async invoke(call, signal) {
      for await (const e of call.inputs()) call.emitText(e.type, 'first');
      // ignore the signal for a while, then try to emit
      await new Promise((r) => setTimeout(r, 100));
      try { call.emitText(TEXT_DELTA, 'after cancel'); } catch (e) { late = e; }
      void signal;
    },
  };
  const h = await serveFor(slow);
  try {
    const data = h.client.Data();
    const ctrl = h.client.Control();
    ctrl.on('error', () => {});
    const first = until(data, (f) => f.kind === 'KIND_EVENT');
    data.write({ kind: 'KIND_OPEN', invocation_id: 'i1' });
    data.write({ kind: 'KIND_EVENT', invocation_id: 'i1', event: ev('x') });
    await first;
    const rest: any[] = [];
    data.on('data', (f: any) => rest.push(f));
    const reply = new Promise<any>((res) => ctrl.on('data', res));
    ctrl.write({ kind: 'KIND_CANCEL', seq: 7, invocation_id: 'i1', reason: 'barge-in' });
    const r = await reply;
    assert.equal(r.found, true);
    assert.equal(String(r.seq), '7');
    await new Promise((res) => setTimeout(res, 300));
    assert.ok(late instanceof CancelledError, 'emit after cancel threw');
    assert.deepEqual(rest.map((f) => f.kind), ['KIND_END']);
    assert.equal(rest[0].error.kind, 'ERROR_KIND_CANCELLED');
    data.end(); ctrl.end();
  } finally { h.close(); }
});

test('a configure error is InvalidArgument with the message naming the key', async () => {
  const strict: Node = {
    info: () => ({ name: 'strict', kind: 'custom', version: '1' }),
    configure(cfg) { cfg.decode({ prefix: '' }); },
    async invoke() {},
  };
  const h = await serveFor(strict);
  try {
    const err: any = await new Promise((res) => h.client.Configure({ node_id: 'n1', config_json: Buffer.from('{"nope":true}') }, (e: any) => res(e)));
    assert.equal(err.code, grpc.status.INVALID_ARGUMENT);
    assert.match(err.details, /unknown key "nope"/);
  } finally { h.close(); }
});
