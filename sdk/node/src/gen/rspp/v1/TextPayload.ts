// Original file: proto/rspp.proto


export interface TextPayload {
  'text'?: (string);
  'final'?: (boolean);
}

export interface TextPayload__Output {
  'text': (string);
  'final': (boolean);
}
