// @rspp/node-sdk: write an RSPP node in Node.js. Implement Node (info,
// configure, invoke) and call serve(node) from the script the runtime
// starts; everything on the wire (docs/node-protocol.md: go-plugin's
// handshake, rspp.v1.Node over gRPC on a unix socket, per-invocation
// credits, cancel, go-plugin's controller and health services) is here.

export { serve, ServeOptions } from './serve';
export { Call, TestCall, CancelledError, InvalidInputError, EventTooLargeError } from './call';
export { Config, ConfigError } from './config';
export {
  Event, Text, Audio, Control, Lane, SCHEMA_VERSION, defaultLane,
  TEXT_DELTA, TEXT_FINAL, TRANSCRIPT_PARTIAL, TRANSCRIPT_FINAL, AUDIO_FRAME,
} from './event';
export { PROTOCOL_VERSION, DEFAULT_INPUT_WINDOW, MAX_MESSAGE_BYTES } from './protocol';

import type { Call } from './call';
import type { Config } from './config';

/** What a node says about itself (Describe). */
export interface Info {
  name: string;
  /** "stt", "llm", "tts" or "custom": must match the provider's configured kind. */
  kind: string;
  /** Shows up in every turn's binding, e.g. "mynode@1.2.0". */
  version: string;
  /** Input event types the node is delivered (empty: all). */
  accepts?: string[];
  /** Output event types it may emit (empty: any the gateway allows). */
  emits?: string[];
  /** Per-invocation input window (default DEFAULT_INPUT_WINDOW). */
  inputWindow?: number;
}

/** What a node author implements. */
export interface Node {
  info(): Info;
  /** Called once after start, before any invoke. Throw ConfigError for a bad block. */
  configure?(cfg: Config): void | Promise<void>;
  /**
   * One invocation: read `for await (const ev of call.inputs())` until it
   * ends, emit outputs, resolve on success. `signal` aborts when the
   * runtime cancels it (barge-in, timeout, turn abort): stop promptly.
   * Invocations of different sessions run concurrently.
   */
  invoke(call: Call, signal: AbortSignal): Promise<void>;
}
