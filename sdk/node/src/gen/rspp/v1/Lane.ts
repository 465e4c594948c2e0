// Original file: proto/rspp.proto

export const Lane = {
  LANE_UNSPECIFIED: 'LANE_UNSPECIFIED',
  LANE_CONTROL: 'LANE_CONTROL',
  LANE_DATA: 'LANE_DATA',
  LANE_TELEMETRY: 'LANE_TELEMETRY',
} as const;

export type Lane =
  | 'LANE_UNSPECIFIED'
  | 0
  | 'LANE_CONTROL'
  | 1
  | 'LANE_DATA'
  | 2
  | 'LANE_TELEMETRY'
  | 3

export type Lane__Output = typeof Lane[keyof typeof Lane]
