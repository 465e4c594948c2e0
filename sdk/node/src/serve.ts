// The plugin side of the node protocol: handshake, rspp.v1.Node, the
// go-plugin controller and health services.

import * as crypto from 'crypto';
import * as path from 'path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

import type { Info, Node } from './index';
import { Call, CancelledError, InvalidInputError } from './call';
import { Config, ConfigError } from './config';
import { fromWire, toWire } from './event';
import {
  COOKIE_KEY, COOKIE_VALUE, CORE_PROTOCOL_VERSION, DEFAULT_INPUT_WINDOW, MAX_MESSAGE_BYTES, PROTOCOL_VERSION,
} from './protocol';
import { makeServerCert } from './tls';
import type { ProtoGrpcType } from './gen/rspp';
import type { DataFrame, DataFrame__Output } from './gen/rspp/v1/DataFrame';
import type { ControlRequest__Output } from './gen/rspp/v1/ControlRequest';
import type { ControlReply } from './gen/rspp/v1/ControlReply';
import type { InvocationError } from './gen/rspp/v1/InvocationError';

const PROTO_DIR = path.join(__dirname, '..', '..', 'proto');
const LOAD_OPTS: protoLoader.Options = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };

function load<T>(file: string): T {
  return grpc.loadPackageDefinition(protoLoader.loadSync(path.join(PROTO_DIR, file), LOAD_OPTS)) as unknown as T;
}

/** Logs one line on stderr as JSON (the host parses it as hclog). */
export function log(level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown> = {}): void {
  process.stderr.write(JSON.stringify({ '@level': level, '@message': msg, '@timestamp': new Date().toISOString(), ...fields }) + '\n');
}

/** An invocation inside the plugin. */
interface Inv {
  call: Call;
  abort: AbortController;
  ended: boolean;
  credit: number; // consumed, not yet granted
  end?: (e?: InvocationError) => void;
}

/** The rspp.v1.Node service for one node. Exported for tests. */
export class NodeService {
  readonly window: number;
  private readonly info: Info;
  private readonly invs = new Map<string, Inv>();
  // Cancels that overtook their OPEN (separate streams); bounded FIFO.
  private readonly early = new Set<string>();
  static readonly maxEarly = 1024;

  constructor(private readonly node: Node) {
    this.info = node.info();
    this.window = this.info.inputWindow && this.info.inputWindow > 0 ? this.info.inputWindow : DEFAULT_INPUT_WINDOW;
  }

  get open(): number { return this.invs.size; }

  handlers(): grpc.UntypedServiceImplementation {
    return {
      Describe: (_call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        cb(null, {
          name: this.info.name, kind: this.info.kind, version: this.info.version, protocol_version: PROTOCOL_VERSION,
          accepts: this.info.accepts ?? [], emits: this.info.emits ?? [], input_window: this.window,
        });
      },
      Configure: (call: grpc.ServerUnaryCall<{ node_id: string; config_dir: string; config_json: Buffer }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        const req = call.request;
        const cfg = new Config(req.node_id, req.config_dir, Buffer.from(req.config_json ?? []));
        Promise.resolve()
          .then(() => this.node.configure?.(cfg))
          .then(() => cb(null, {}), (err: unknown) => {
            const msg = err instanceof Error ? err.message : String(err);
            cb({ code: grpc.status.INVALID_ARGUMENT, details: err instanceof ConfigError ? msg : `configure: ${msg}` });
          });
      },
      Health: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => {
        cb(null, { serving: true, open_invocations: this.invs.size });
      },
      Data: (stream: grpc.ServerDuplexStream<DataFrame__Output, DataFrame>) => this.data(stream),
      Control: (stream: grpc.ServerDuplexStream<ControlRequest__Output, ControlReply>) => {
        stream.on('data', (req: ControlRequest__Output) => {
          let found = false;
          if (req.kind === 'KIND_CANCEL') found = this.cancel(req.invocation_id, req.reason || 'cancelled');
          stream.write({ seq: req.seq, found });
        });
        stream.on('end', () => stream.end());
        stream.on('error', () => {});
      },
    };
  }

  private data(stream: grpc.ServerDuplexStream<DataFrame__Output, DataFrame>): void {
    const mine = new Set<string>();
    const write = (f: DataFrame) => { if (!stream.destroyed && stream.writable) stream.write(f); };
    const batch = Math.max(1, Math.floor(this.window / 2));
    stream.on('data', (f: DataFrame__Output) => {
      const id = f.invocation_id;
      switch (f.kind) {
        case 'KIND_OPEN': {
          if (!id || this.invs.has(id)) return;
          const abort = new AbortController();
          const epoch = f.authority_epoch;
          const inv: Inv = { abort, ended: false, credit: 0, call: undefined as unknown as Call };
          inv.call = new Call(id, f.session_id, f.turn_id, f.node_id, abort.signal, {
            // Every output carries the epoch its invocation was opened with:
            // under a lease authority (etcd) an output without it is stale.
            emit: (ev) => write({ kind: 'KIND_EVENT', invocation_id: id, event: { ...toWire(ev), authority_epoch: epoch } }),
            consumed: (n) => {
              inv.credit += n;
              if (inv.credit >= batch && !inv.ended) {
                write({ kind: 'KIND_CREDIT', invocation_id: id, credit: inv.credit });
                inv.credit = 0;
              }
            },
          });
          this.invs.set(id, inv);
          mine.add(id);
          const end = (error?: InvocationError) => this.end(id, write, error);
          inv.end = end;
          if (this.early.delete(id)) {
            this.cancel(id, 'cancelled before open');
            return;
          }
          Promise.resolve()
            .then(() => this.node.invoke(inv.call, abort.signal))
            .then(() => end(abort.signal.aborted ? cancelled('cancelled') : undefined), (err: unknown) => end(toInvocationError(err, abort.signal.aborted)));
          return;
        }
        case 'KIND_EVENT': {
          const inv = this.invs.get(id);
          if (!inv || inv.ended || !f.event) return;
          if (inv.call.pending >= this.window) {
            // The host broke flow control: this invocation fails, the stream goes on.
            inv.abort.abort(new Error('window overrun'));
            this.end(id, write, { kind: 'ERROR_KIND_PROTOCOL', message: `host exceeded the invocation's input window: more than ${this.window} unconsumed inputs` });
            return;
          }
          inv.call.push(fromWire(f.event));
          return;
        }
        case 'KIND_CLOSE_INPUT':
          this.invs.get(id)?.call.close();
          return;
        default:
          return;
      }
    });
    const gone = () => {
      for (const id of mine) {
        const inv = this.invs.get(id);
        if (inv && !inv.ended) {
          inv.ended = true;
          inv.abort.abort(new CancelledError('host went away'));
          this.invs.delete(id);
        }
      }
    };
    stream.on('end', () => { gone(); stream.end(); });
    stream.on('error', gone);
    stream.on('close', gone);
  }

  private end(id: string, write: (f: DataFrame) => void, error?: InvocationError): void {
    const inv = this.invs.get(id);
    if (!inv || inv.ended) return;
    inv.ended = true;
    this.invs.delete(id);
    const frame: DataFrame = { kind: 'KIND_END', invocation_id: id };
    if (error) frame.error = error;
    write(frame);
  }

  /**
   * Cancels an invocation: its signal aborts, later emits are refused and
   * END{CANCELLED} goes out at once (the host's grace is not spent waiting
   * for the author's code to notice). A cancel ahead of its OPEN is kept.
   */
  cancel(id: string, reason: string): boolean {
    const inv = this.invs.get(id);
    if (!inv) {
      if (this.early.size >= NodeService.maxEarly) this.early.delete(this.early.values().next().value as string);
      this.early.add(id);
      return false;
    }
    inv.abort.abort(new CancelledError(reason));
    inv.end?.(cancelled(reason));
    return true;
  }
}

function cancelled(reason: string): InvocationError {
  return { kind: 'ERROR_KIND_CANCELLED', message: `invocation cancelled: ${reason}` };
}

function toInvocationError(err: unknown, aborted: boolean): InvocationError {
  const msg = err instanceof Error ? err.message : String(err);
  if (aborted || err instanceof CancelledError) return { kind: 'ERROR_KIND_CANCELLED', message: msg };
  if (err instanceof InvalidInputError) return { kind: 'ERROR_KIND_INVALID_INPUT', message: msg };
  return { kind: 'ERROR_KIND_INTERNAL', message: msg };
}

export interface ServeOptions {
  /** Directory for the socket (default PLUGIN_UNIX_SOCKET_DIR). */
  socketDir?: string;
  /** PEM of the host's certificate: serve TLS (default PLUGIN_CLIENT_CERT). */
  clientCert?: string;
  /** Where the handshake line goes (default stdout). */
  handshake?: (line: string) => void;
  /** Called on the controller's Shutdown (default: exit 0). */
  onShutdown?: () => void;
}

export interface Started { server: grpc.Server; socket: string; line: string; service: NodeService }

/** Starts serving node and writes the handshake line; resolves once listening. */
export function start(node: Node, opts: ServeOptions = {}): Promise<Started> {
  const env = process.env;
  const service = new NodeService(node);
  const dir = opts.socketDir ?? env.PLUGIN_UNIX_SOCKET_DIR ?? env.TMPDIR ?? '/tmp';
  // The runtime accepts only a socket directly inside the directory it gave.
  const socket = path.join(dir, `plugin${crypto.randomBytes(5).toString('hex')}`);
  const clientCert = opts.clientCert ?? env.PLUGIN_CLIENT_CERT;
  let creds = grpc.ServerCredentials.createInsecure();
  let cert = '';
  if (clientCert) {
    const sc = makeServerCert();
    creds = grpc.ServerCredentials.createSsl(Buffer.from(clientCert), [{ private_key: Buffer.from(sc.keyPem), cert_chain: Buffer.from(sc.certPem) }], true);
    cert = sc.handshakeCert;
  }
  const server = new grpc.Server({ 'grpc.max_receive_message_length': MAX_MESSAGE_BYTES, 'grpc.max_send_message_length': MAX_MESSAGE_BYTES });
  const rspp = load<ProtoGrpcType>('rspp.proto').rspp.v1;
  server.addService(rspp.Node.service, service.handlers());
  const ctl = load<{ plugin: { GRPCController: grpc.ServiceClientConstructor } }>('plugin.proto');
  server.addService(ctl.plugin.GRPCController.service, {
    Shutdown: (_c: unknown, cb: grpc.sendUnaryData<unknown>) => {
      cb(null, {});
      // Answer first, then go: the host waits for the process to exit.
      setImmediate(() => (opts.onShutdown ?? (() => { server.forceShutdown(); process.exit(0); }))());
    },
  });
  const health = load<{ grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } } }>('health.proto');
  server.addService(health.grpc.health.v1.Health.service, {
    Check: (_c: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, { status: 1 }), // SERVING
  });
  return new Promise((resolve, reject) => {
    server.bindAsync(`unix://${socket}`, creds, (err) => {
      if (err) return reject(new Error(`listen on ${socket}: ${err.message}`));
      // core version | app (node protocol) version | network | address | protocol | server cert
      const line = `${CORE_PROTOCOL_VERSION}|${PROTOCOL_VERSION}|unix|${socket}|grpc|${cert}`;
      (opts.handshake ?? ((l: string) => process.stdout.write(l + '\n')))(line);
      resolve({ server, socket, line, service });
    });
  });
}

/**
 * Runs node as a plugin: checks it was started by the runtime, serves, and
 * prints the handshake line. Call it from the script the runtime starts.
 */
export function serve(node: Node, opts: ServeOptions = {}): void {
  const env = process.env;
  const name = safeName(node);
  if (env[COOKIE_KEY] !== COOKIE_VALUE) {
    process.stderr.write(`${name}: this is an RSPP node plugin: the runtime starts it (try: rspp-node check ${process.argv[1] ?? ''})\n`);
    process.exit(1);
  }
  const versions = (env.PLUGIN_PROTOCOL_VERSIONS ?? '').split(',');
  if (!versions.includes(String(PROTOCOL_VERSION))) {
    log('error', `host wants node protocol versions ${env.PLUGIN_PROTOCOL_VERSIONS}, this SDK speaks ${PROTOCOL_VERSION}`);
    process.exit(1);
  }
  process.on('SIGTERM', () => process.exit(0));
  start(node, opts).catch((err: Error) => {
    log('error', 'cannot serve', { error: err.message });
    process.exit(1);
  });
}

function safeName(node: Node): string {
  try { return node.info().name; } catch { return 'node'; }
}
