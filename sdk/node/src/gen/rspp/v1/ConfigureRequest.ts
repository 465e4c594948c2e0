// Original file: proto/rspp.proto


export interface ConfigureRequest {
  'node_id'?: (string);
  'config_dir'?: (string);
  'config_json'?: (Buffer | Uint8Array | string);
}

export interface ConfigureRequest__Output {
  'node_id': (string);
  'config_dir': (string);
  'config_json': (Buffer);
}
