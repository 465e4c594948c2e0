// Original file: proto/rspp.proto


export interface HealthReply {
  'serving'?: (boolean);
  'open_invocations'?: (number);
}

export interface HealthReply__Output {
  'serving': (boolean);
  'open_invocations': (number);
}
