// Original file: proto/rspp.proto

import type { ErrorKind as _rspp_v1_ErrorKind, ErrorKind__Output as _rspp_v1_ErrorKind__Output } from '../../rspp/v1/ErrorKind';

export interface InvocationError {
  'kind'?: (_rspp_v1_ErrorKind);
  'message'?: (string);
  'code'?: (string);
}

export interface InvocationError__Output {
  'kind': (_rspp_v1_ErrorKind__Output);
  'message': (string);
  'code': (string);
}
