// One invocation as the author sees it: its inputs as an async iterable
// (credit is granted back as they are taken), emit for its outputs.

import { AUDIO_FRAME, Event, approxSize, defaultLane, SCHEMA_VERSION } from './event';
import { MAX_MESSAGE_BYTES } from './protocol';

/** Thrown by emit after the invocation was cancelled: nothing was sent. */
export class CancelledError extends Error {
  constructor(message = 'invocation cancelled') {
    super(message);
    this.name = 'CancelledError';
  }
}

/** Throw (or reject with) this from invoke for unusable input: END{INVALID_INPUT}. */
export class InvalidInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidInputError';
  }
}

/** Thrown by emit for an event that would not fit in one message: nothing was sent. */
export class EventTooLargeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EventTooLargeError';
  }
}

/** How a Call reaches its transport. */
export interface CallSink {
  /** Sends one output (already stamped). */
  emit(ev: Event): void;
  /** The node took n inputs: credit them back. */
  consumed(n: number): void;
}

export class Call {
  private queue: Event[] = [];
  private closed = false;
  private waiter: (() => void) | null = null;

  constructor(
    readonly id: string,
    readonly sessionId: string,
    readonly turnId: string,
    readonly nodeId: string,
    /** Aborted when the runtime cancels the invocation. */
    readonly signal: AbortSignal,
    private readonly sink: CallSink,
  ) {
    signal.addEventListener('abort', () => this.wake(), { once: true });
  }

  /** Queues one input (transport side). */
  push(ev: Event): void {
    if (this.closed) return;
    this.queue.push(ev);
    this.wake();
  }

  /** No more input will come (transport side). */
  close(): void {
    this.closed = true;
    this.wake();
  }

  /** Inputs not yet taken by the node. */
  get pending(): number { return this.queue.length; }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    if (w) w();
  }

  /**
   * The invocation's inputs, in order, until the runtime closes them or
   * cancels the invocation (then the iteration just ends: check signal).
   */
  async *inputs(): AsyncGenerator<Event, void, undefined> {
    for (;;) {
      if (this.signal.aborted) return;
      const ev = this.queue.shift();
      if (ev !== undefined) {
        this.sink.consumed(1);
        yield ev;
        continue;
      }
      if (this.closed) return;
      await new Promise<void>((resolve) => { this.waiter = resolve; });
    }
  }

  /**
   * Emits one output. NodeID and InvocationID are always the call's;
   * SessionID and TurnID are filled in when empty; lane and schema version
   * get their defaults. Throws CancelledError after a cancel and
   * EventTooLargeError for an event over MAX_MESSAGE_BYTES.
   */
  emit(ev: Event): void {
    if (this.signal.aborted) throw new CancelledError();
    const out: Event = {
      ...ev,
      sessionId: ev.sessionId || this.sessionId,
      turnId: ev.turnId || this.turnId,
      invocationId: this.id,
      nodeId: this.nodeId,
      lane: ev.lane ?? defaultLane(ev.type),
      schemaVersion: ev.schemaVersion || SCHEMA_VERSION,
    };
    const n = approxSize(out);
    if (n > MAX_MESSAGE_BYTES - 256) {
      throw new EventTooLargeError(`${ev.type} event is about ${n} bytes on the wire, limit ${MAX_MESSAGE_BYTES}`);
    }
    this.sink.emit(out);
  }

  /** Emits a text-carrying event (text.delta, text.final, transcript.*). */
  emitText(type: string, text: string, final = false): void {
    this.emit({ type, text: { text, final } });
  }

  /** Emits one PCM s16le frame as audio.frame. */
  emitAudio(pcm: Buffer, sampleRate: number, channels = 1): void {
    this.emit({ type: AUDIO_FRAME, audio: { pcm, sampleRate, channels } });
  }
}

/**
 * A Call for unit tests of a Node without any process boundary: inputs
 * are given up front, outputs are collected in `outputs`. A test seam,
 * not a transport.
 */
export class TestCall extends Call {
  readonly outputs: Event[] = [];
  readonly controller: AbortController;
  consumedInputs = 0;

  constructor(inputs: Event[], ids: { id?: string; sessionId?: string; turnId?: string; nodeId?: string } = {}) {
    const controller = new AbortController();
    const sink: CallSink = {
      emit: (ev) => { this.outputs.push(ev); },
      consumed: (n) => { this.consumedInputs += n; },
    };
    super(ids.id ?? 'test-invocation', ids.sessionId ?? 'test-session', ids.turnId ?? 'test-turn', ids.nodeId ?? 'test-node', controller.signal, sink);
    this.controller = controller;
    for (const ev of inputs) this.push(ev);
    this.close();
  }

  /** Cancels the invocation as the runtime would. */
  cancel(): void { this.controller.abort(new CancelledError()); }

  /** The texts of the text outputs, in order. */
  texts(): string[] {
    return this.outputs.filter((e) => e.text).map((e) => e.text!.text);
  }
}
