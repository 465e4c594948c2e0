// Original file: proto/rspp.proto


export interface DescribeRequest {
}

export interface DescribeRequest__Output {
}
