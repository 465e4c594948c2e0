// Original file: proto/rspp.proto

import type { Long } from '@grpc/proto-loader';

export interface ControlReply {
  'seq'?: (number | string | Long);
  'found'?: (boolean);
}

export interface ControlReply__Output {
  'seq': (string);
  'found': (boolean);
}
