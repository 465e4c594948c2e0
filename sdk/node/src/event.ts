// The Event ABI as a node author sees it, and its mapping to the wire.

import type { Event as WireEvent, Event__Output as WireEventOut } from './gen/rspp/v1/Event';

/** The Event ABI schema version the runtime speaks. */
export const SCHEMA_VERSION = 1;

export const AUDIO_FRAME = 'audio.frame';
export const TRANSCRIPT_PARTIAL = 'transcript.partial';
export const TRANSCRIPT_FINAL = 'transcript.final';
export const TEXT_DELTA = 'text.delta';
export const TEXT_FINAL = 'text.final';

export type Lane = 'control' | 'data' | 'telemetry';

export interface Text { text: string; final?: boolean }
/** PCM s16le, interleaved. */
export interface Audio { pcm: Buffer; sampleRate: number; channels: number }
export interface Control { signal?: string; scope?: string; reason?: string }

export interface Event {
  type: string;
  /** Default: the type's prefix decides ("control.", "telemetry.", else data). */
  lane?: Lane;
  id?: string;
  sessionId?: string;
  turnId?: string;
  nodeId?: string;
  invocationId?: string;
  schemaVersion?: number;
  text?: Text;
  audio?: Audio;
  control?: Control;
  /** Media time of the payload in ns, when known. */
  mediaNs?: bigint;
}

/** The lane the runtime requires for a type: it decides by prefix. */
export function defaultLane(type: string): Lane {
  if (type.startsWith('control.')) return 'control';
  if (type.startsWith('telemetry.')) return 'telemetry';
  return 'data';
}

const laneToWire: Record<Lane, WireEvent['lane']> = {
  control: 'LANE_CONTROL', data: 'LANE_DATA', telemetry: 'LANE_TELEMETRY',
};
const laneFromWire: Record<string, Lane | undefined> = {
  LANE_CONTROL: 'control', LANE_DATA: 'data', LANE_TELEMETRY: 'telemetry',
};

export function toWire(ev: Event): WireEvent {
  const w: WireEvent = {
    event_id: ev.id ?? '',
    event_type: ev.type,
    lane: laneToWire[ev.lane ?? defaultLane(ev.type)],
    session_id: ev.sessionId ?? '',
    turn_id: ev.turnId ?? '',
    node_id: ev.nodeId ?? '',
    invocation_id: ev.invocationId ?? '',
    schema_version: ev.schemaVersion ?? SCHEMA_VERSION,
  };
  if (ev.mediaNs !== undefined) w.media_ns = ev.mediaNs.toString();
  if (ev.text) w.text = { text: ev.text.text, final: !!ev.text.final };
  else if (ev.audio) w.audio = { pcm: ev.audio.pcm, sample_rate: ev.audio.sampleRate, channels: ev.audio.channels };
  else if (ev.control) w.control = { signal: ev.control.signal ?? '', scope: ev.control.scope ?? '', reason: ev.control.reason ?? '' };
  return w;
}

export function fromWire(w: WireEventOut): Event {
  const ev: Event = {
    type: w.event_type,
    lane: laneFromWire[String(w.lane)],
    id: w.event_id || undefined,
    sessionId: w.session_id || undefined,
    turnId: w.turn_id || undefined,
    nodeId: w.node_id || undefined,
    invocationId: w.invocation_id || undefined,
    schemaVersion: w.schema_version,
  };
  if (w.media_ns && w.media_ns !== '0') ev.mediaNs = BigInt(w.media_ns);
  if (w.text) ev.text = { text: w.text.text, final: w.text.final };
  if (w.audio) ev.audio = { pcm: Buffer.from(w.audio.pcm), sampleRate: w.audio.sample_rate, channels: w.audio.channels };
  if (w.control) ev.control = { signal: w.control.signal, scope: w.control.scope, reason: w.control.reason };
  return ev;
}

/** An upper bound of the event's encoded size (payload and ids). */
export function approxSize(ev: Event): number {
  let n = 64 + ev.type.length;
  for (const s of [ev.id, ev.sessionId, ev.turnId, ev.nodeId, ev.invocationId]) n += (s?.length ?? 0) + 4;
  if (ev.text) n += Buffer.byteLength(ev.text.text) + 8;
  if (ev.audio) n += ev.audio.pcm.length + 16;
  if (ev.control) n += Buffer.byteLength((ev.control.signal ?? '') + (ev.control.scope ?? '') + (ev.control.reason ?? '')) + 12;
  return n;
}
