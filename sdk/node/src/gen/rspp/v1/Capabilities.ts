// Original file: proto/rspp.proto


export interface Capabilities {
  'sample_rates'?: (number)[];
  'streaming_input'?: (boolean);
  'streaming_output'?: (boolean);
  'languages'?: (string)[];
}

export interface Capabilities__Output {
  'sample_rates': (number)[];
  'streaming_input': (boolean);
  'streaming_output': (boolean);
  'languages': (string)[];
}
