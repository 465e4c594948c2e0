// Original file: proto/rspp.proto


export interface ControlPayload {
  'signal'?: (string);
  'scope'?: (string);
  'reason'?: (string);
}

export interface ControlPayload__Output {
  'signal': (string);
  'scope': (string);
  'reason': (string);
}
