#!/usr/bin/env node
// An RSPP node written in JavaScript: the whole node protocol
// (docs/node-protocol.md) without the Go SDK. It speaks go-plugin's
// handshake (with AutoMTLS when the host asks for it), serves
// rspp.v1.Node over gRPC on a unix socket, and echoes every text input as
// "node.js: <text>". test/isolation runs it under the trusted and the
// tenant (sealed) profile.
'use strict';

const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const forge = require('node-forge');

const COOKIE_KEY = 'RSPP_NODE_PLUGIN';
const COOKIE_VALUE = 'a3f1c0de-rspp-node-v1';

function fail(msg) {
  process.stderr.write(`echo-node: ${msg}\n`);
  process.exit(1);
}

if (process.env[COOKIE_KEY] !== COOKIE_VALUE) {
  fail('this is an RSPP node plugin: the runtime starts it');
}
// Node protocol 2: per-invocation input windows and CREDIT frames.
const PROTOCOL_VERSION = 2;
const INPUT_WINDOW = 64;
if (!(process.env.PLUGIN_PROTOCOL_VERSIONS || '').split(',').includes(String(PROTOCOL_VERSION))) {
  fail(`host wants protocol versions ${process.env.PLUGIN_PROTOCOL_VERSIONS}, this node speaks ${PROTOCOL_VERSION}`);
}

// The contract: beside the script (as the tests lay it out) or in the
// repository.
const protoPath = [path.join(__dirname, 'rspp.proto'), path.join(__dirname, '../../../proto/rspp/v1/rspp.proto')]
  .find((p) => fs.existsSync(p));
if (!protoPath) fail('rspp.proto not found');
const rspp = grpc.loadPackageDefinition(protoLoader.loadSync(protoPath, {
  keepCase: true, longs: String, enums: String, defaults: true, oneofs: true,
})).rspp.v1;

// go-plugin's own services: the controller (graceful shutdown) and health.
const pluginProto = `
syntax = "proto3";
package plugin;
message Empty {}
service GRPCController { rpc Shutdown(Empty) returns (Empty); }
`;
const healthProto = `
syntax = "proto3";
package grpc.health.v1;
message HealthCheckRequest { string service = 1; }
message HealthCheckResponse { int32 status = 1; }
service Health { rpc Check(HealthCheckRequest) returns (HealthCheckResponse); }
`;
function inlineProto(name, text) {
  const dir = fs.mkdtempSync(path.join(process.env.TMPDIR || '/tmp', 'echo-node-'));
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  const def = protoLoader.loadSync(file, { keepCase: true, defaults: true });
  fs.rmSync(dir, { recursive: true, force: true });
  return grpc.loadPackageDefinition(def);
}

// AutoMTLS: a fresh self-signed certificate for "localhost" (what
// go-plugin's client verifies), the host's certificate as the only CA.
function makeCert() {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' });
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }));
  cert.serialNumber = '01' + crypto.randomBytes(8).toString('hex');
  cert.validity.notBefore = new Date(Date.now() - 30 * 1000);
  cert.validity.notAfter = new Date(Date.now() + 24 * 3600 * 1000);
  const attrs = [{ name: 'commonName', value: 'localhost' }, { name: 'organizationName', value: 'rspp echo-node' }];
  cert.setSubject(attrs);
  cert.setIssuer(attrs);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, keyCertSign: true },
    { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
    { name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }] },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(keyPem), forge.md.sha256.create());
  const certPem = forge.pki.certificateToPem(cert);
  const der = Buffer.from(forge.asn1.toDer(forge.pki.certificateToAsn1(cert)).getBytes(), 'binary');
  return { keyPem, certPem, der };
}

// Invocations by id; a cancel may come before its OPEN.
const calls = new Map();
const cancelledEarly = new Set();
let data = null; // the Data stream

function end(id, error) {
  const c = calls.get(id);
  if (!c || c.ended) return;
  c.ended = true;
  calls.delete(id);
  const frame = { kind: 'KIND_END', invocation_id: id };
  if (error) frame.error = error;
  data.write(frame);
}

function onData(frame) {
  const id = frame.invocation_id;
  switch (frame.kind) {
    case 'KIND_OPEN':
      calls.set(id, { id, session: frame.session_id, turn: frame.turn_id, node: frame.node_id, ended: false, consumed: 0 });
      if (cancelledEarly.delete(id)) end(id, { kind: 'ERROR_KIND_CANCELLED', message: 'cancelled before open' });
      break;
    case 'KIND_EVENT': {
      const c = calls.get(id);
      if (!c || c.ended) break;
      // Each input is taken at once: give the window back in batches of
      // half of it, so the host never runs dry.
      if (++c.consumed >= INPUT_WINDOW / 2) {
        data.write({ kind: 'KIND_CREDIT', invocation_id: id, credit: c.consumed });
        c.consumed = 0;
      }
      if (!frame.event || !frame.event.text) break;
      data.write({
        kind: 'KIND_EVENT', invocation_id: id,
        event: {
          event_type: 'text.delta', lane: 'LANE_DATA', schema_version: 1,
          session_id: c.session, turn_id: c.turn, node_id: c.node, invocation_id: id,
          text: { text: `node.js: ${frame.event.text.text}`, final: false },
        },
      });
      break;
    }
    case 'KIND_CLOSE_INPUT':
      end(id);
      break;
    default:
      break;
  }
}

const node = {
  Describe(_call, cb) {
    cb(null, {
      name: 'echo-node', kind: 'custom', version: '1.0.0-js', protocol_version: PROTOCOL_VERSION, input_window: INPUT_WINDOW,
      accepts: ['text.delta'], emits: ['text.delta'],
    });
  },
  Configure(_call, cb) { cb(null, {}); },
  Health(_call, cb) { cb(null, { serving: true, open_invocations: calls.size }); },
  Data(stream) {
    data = stream;
    stream.on('data', onData);
    stream.on('end', () => stream.end());
    stream.on('error', () => {});
  },
  Control(stream) {
    stream.on('data', (req) => {
      let found = false;
      if (req.kind === 'KIND_CANCEL') {
        found = calls.has(req.invocation_id);
        if (found) end(req.invocation_id, { kind: 'ERROR_KIND_CANCELLED', message: req.reason || 'cancelled' });
        else cancelledEarly.add(req.invocation_id);
      }
      stream.write({ seq: req.seq, found });
    });
    stream.on('end', () => stream.end());
    stream.on('error', () => {});
  },
};

function main() {
  const dir = process.env.PLUGIN_UNIX_SOCKET_DIR || process.env.TMPDIR || '/tmp';
  const sock = path.join(dir, `plugin-js-${process.pid}-${crypto.randomBytes(4).toString('hex')}`);
  // runtime.plugin_channel: mtls sends the host's certificate (AutoMTLS);
  // the default (peercred) sends none: plaintext on the private socket,
  // whose directory only the host can reach (grpc-js cannot read
  // SO_PEERCRED, so this node relies on that directory alone).
  const clientCert = process.env.PLUGIN_CLIENT_CERT;
  let creds = grpc.ServerCredentials.createInsecure();
  let cert = '';
  if (clientCert) {
    const { keyPem, certPem, der } = makeCert();
    creds = grpc.ServerCredentials.createSsl(Buffer.from(clientCert),
      [{ private_key: Buffer.from(keyPem), cert_chain: Buffer.from(certPem) }], true);
    cert = der.toString('base64').replace(/=+$/, '');
  }
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 1 << 20, 'grpc.max_send_message_length': 1 << 20 });
  server.addService(rspp.Node.service, node);
  const ctl = inlineProto('plugin.proto', pluginProto);
  server.addService(ctl.plugin.GRPCController.service, {
    Shutdown(_call, cb) { cb(null, {}); setImmediate(() => server.tryShutdown(() => process.exit(0))); },
  });
  const health = inlineProto('health.proto', healthProto);
  server.addService(health.grpc.health.v1.Health.service, {
    Check(_call, cb) { cb(null, { status: 1 }); }, // SERVING
  });
  server.bindAsync(`unix://${sock}`, creds, (err) => {
    if (err) fail(`listen on ${sock}: ${err.message}`);
    // go-plugin's handshake line: core version|app version|network|address|protocol|server cert
    // (empty without AutoMTLS).
    process.stdout.write(`1|${PROTOCOL_VERSION}|unix|${sock}|grpc|${cert}\n`);
  });
  process.on('SIGTERM', () => process.exit(0));
}

main();
