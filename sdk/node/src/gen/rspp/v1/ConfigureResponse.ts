// Original file: proto/rspp.proto


export interface ConfigureResponse {
}

export interface ConfigureResponse__Output {
}
