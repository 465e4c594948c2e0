// Original file: proto/rspp.proto

import type { Lane as _rspp_v1_Lane, Lane__Output as _rspp_v1_Lane__Output } from '../../rspp/v1/Lane';
import type { AudioFrame as _rspp_v1_AudioFrame, AudioFrame__Output as _rspp_v1_AudioFrame__Output } from '../../rspp/v1/AudioFrame';
import type { TextPayload as _rspp_v1_TextPayload, TextPayload__Output as _rspp_v1_TextPayload__Output } from '../../rspp/v1/TextPayload';
import type { ControlPayload as _rspp_v1_ControlPayload, ControlPayload__Output as _rspp_v1_ControlPayload__Output } from '../../rspp/v1/ControlPayload';
import type { Long } from '@grpc/proto-loader';

export interface Event {
  'event_id'?: (string);
  'event_type'?: (string);
  'lane'?: (_rspp_v1_Lane);
  'session_id'?: (string);
  'turn_id'?: (string);
  'node_id'?: (string);
  'invocation_id'?: (string);
  'schema_version'?: (number);
  'runtime_sequence'?: (number | string | Long);
  'authority_epoch'?: (number | string | Long);
  'mono_ns'?: (number | string | Long);
  'wall_unix_ns'?: (number | string | Long);
  'media_ns'?: (number | string | Long);
  'audio'?: (_rspp_v1_AudioFrame | null);
  'text'?: (_rspp_v1_TextPayload | null);
  'control'?: (_rspp_v1_ControlPayload | null);
  'payload'?: "audio"|"text"|"control";
}

export interface Event__Output {
  'event_id': (string);
  'event_type': (string);
  'lane': (_rspp_v1_Lane__Output);
  'session_id': (string);
  'turn_id': (string);
  'node_id': (string);
  'invocation_id': (string);
  'schema_version': (number);
  'runtime_sequence': (string);
  'authority_epoch': (string);
  'mono_ns': (string);
  'wall_unix_ns': (string);
  'media_ns': (string);
  'audio'?: (_rspp_v1_AudioFrame__Output | null);
  'text'?: (_rspp_v1_TextPayload__Output | null);
  'control'?: (_rspp_v1_ControlPayload__Output | null);
  'payload'?: "audio"|"text"|"control";
}
