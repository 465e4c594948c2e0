// Original file: proto/rspp.proto


export interface HealthRequest {
}

export interface HealthRequest__Output {
}
