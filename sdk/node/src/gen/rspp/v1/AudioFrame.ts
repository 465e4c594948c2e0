// Original file: proto/rspp.proto


export interface AudioFrame {
  'pcm'?: (Buffer | Uint8Array | string);
  'sample_rate'?: (number);
  'channels'?: (number);
}

export interface AudioFrame__Output {
  'pcm': (Buffer);
  'sample_rate': (number);
  'channels': (number);
}
