// Package rsppv1 is the wire contract between the supervisor and every
// node process: the Node gRPC service (Describe, Configure, Health, Invoke
// as a bidirectional stream) and its messages, generated from rspp.proto
// by `make proto` (make proto-check fails on drift). It imports nothing
// of this module; externalnode and the SDKs speak it.
package rsppv1
