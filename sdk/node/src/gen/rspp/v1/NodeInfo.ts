// Original file: proto/rspp.proto


export interface NodeInfo {
  'name'?: (string);
  'kind'?: (string);
  'version'?: (string);
  'protocol_version'?: (number);
  'accepts'?: (string)[];
  'emits'?: (string)[];
  'input_window'?: (number);
}

export interface NodeInfo__Output {
  'name': (string);
  'kind': (string);
  'version': (string);
  'protocol_version': (number);
  'accepts': (string)[];
  'emits': (string)[];
  'input_window': (number);
}
