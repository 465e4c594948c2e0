// Original file: proto/rspp.proto

import type { Capabilities as _rspp_v1_Capabilities, Capabilities__Output as _rspp_v1_Capabilities__Output } from '../../rspp/v1/Capabilities';

export interface NodeInfo {
  'name'?: (string);
  'kind'?: (string);
  'version'?: (string);
  'protocol_version'?: (number);
  'accepts'?: (string)[];
  'emits'?: (string)[];
  'input_window'?: (number);
  'capabilities'?: (_rspp_v1_Capabilities | null);
  'idempotent'?: (boolean);
}

export interface NodeInfo__Output {
  'name': (string);
  'kind': (string);
  'version': (string);
  'protocol_version': (number);
  'accepts': (string)[];
  'emits': (string)[];
  'input_window': (number);
  'capabilities': (_rspp_v1_Capabilities__Output | null);
  'idempotent': (boolean);
}
