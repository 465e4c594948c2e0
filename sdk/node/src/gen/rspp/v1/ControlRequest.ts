// Original file: proto/rspp.proto

import type { Long } from '@grpc/proto-loader';

// Original file: proto/rspp.proto

export const _rspp_v1_ControlRequest_Kind = {
  KIND_UNSPECIFIED: 'KIND_UNSPECIFIED',
  KIND_CANCEL: 'KIND_CANCEL',
  KIND_PING: 'KIND_PING',
} as const;

export type _rspp_v1_ControlRequest_Kind =
  | 'KIND_UNSPECIFIED'
  | 0
  | 'KIND_CANCEL'
  | 1
  | 'KIND_PING'
  | 2

export type _rspp_v1_ControlRequest_Kind__Output = typeof _rspp_v1_ControlRequest_Kind[keyof typeof _rspp_v1_ControlRequest_Kind]

export interface ControlRequest {
  'kind'?: (_rspp_v1_ControlRequest_Kind);
  'seq'?: (number | string | Long);
  'invocation_id'?: (string);
  'reason'?: (string);
}

export interface ControlRequest__Output {
  'kind': (_rspp_v1_ControlRequest_Kind__Output);
  'seq': (string);
  'invocation_id': (string);
  'reason': (string);
}
