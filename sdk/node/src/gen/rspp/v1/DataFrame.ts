// Original file: proto/rspp.proto

import type { Event as _rspp_v1_Event, Event__Output as _rspp_v1_Event__Output } from '../../rspp/v1/Event';
import type { InvocationError as _rspp_v1_InvocationError, InvocationError__Output as _rspp_v1_InvocationError__Output } from '../../rspp/v1/InvocationError';
import type { Long } from '@grpc/proto-loader';

// Original file: proto/rspp.proto

export const _rspp_v1_DataFrame_Kind = {
  KIND_UNSPECIFIED: 'KIND_UNSPECIFIED',
  KIND_OPEN: 'KIND_OPEN',
  KIND_EVENT: 'KIND_EVENT',
  KIND_CLOSE_INPUT: 'KIND_CLOSE_INPUT',
  KIND_END: 'KIND_END',
  KIND_CREDIT: 'KIND_CREDIT',
} as const;

export type _rspp_v1_DataFrame_Kind =
  | 'KIND_UNSPECIFIED'
  | 0
  | 'KIND_OPEN'
  | 1
  | 'KIND_EVENT'
  | 2
  | 'KIND_CLOSE_INPUT'
  | 3
  | 'KIND_END'
  | 4
  | 'KIND_CREDIT'
  | 5

export type _rspp_v1_DataFrame_Kind__Output = typeof _rspp_v1_DataFrame_Kind[keyof typeof _rspp_v1_DataFrame_Kind]

export interface DataFrame {
  'kind'?: (_rspp_v1_DataFrame_Kind);
  'invocation_id'?: (string);
  'session_id'?: (string);
  'turn_id'?: (string);
  'node_id'?: (string);
  'deadline_unix_ns'?: (number | string | Long);
  'event'?: (_rspp_v1_Event | null);
  'error'?: (_rspp_v1_InvocationError | null);
  'credit'?: (number);
  'authority_epoch'?: (number | string | Long);
  'idempotency_key'?: (string);
}

export interface DataFrame__Output {
  'kind': (_rspp_v1_DataFrame_Kind__Output);
  'invocation_id': (string);
  'session_id': (string);
  'turn_id': (string);
  'node_id': (string);
  'deadline_unix_ns': (string);
  'event': (_rspp_v1_Event__Output | null);
  'error': (_rspp_v1_InvocationError__Output | null);
  'credit': (number);
  'authority_epoch': (string);
  'idempotency_key': (string);
}
