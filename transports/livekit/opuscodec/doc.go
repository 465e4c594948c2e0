// Package opuscodec is PCM <-> Opus for the LiveKit transport, run in a
// process of its own (`rspp-opus`).
//
// Why a process: libopus is C, so Opus needs cgo, and the rspp binary must
// stay cgo-free because it re-execs itself as the sandbox entry point
// (landlock + cgo hang inside a new PID namespace). No pure-Go Opus encoder
// resolves from the module proxy. So the cgo code (livekit/media-sdk's
// Opus over libopus) lives only in cmd/rspp-opus, and rspp speaks to it
// over a pipe: one process per direction of a session, each a strict
// request/response filter. A crash of the C codec is then contained to
// that session's codec, like any other node of the runtime.
//
// Wire (both directions, big-endian): a request is u32 length + payload;
// a reply is u8 status (0 ok, 1 error) + u32 length + payload (the
// output, or the error text). Decode: payload an Opus packet, output
// 16 kHz mono s16le PCM (libopus downmixes stereo and resamples from
// 48 kHz itself). Encode: payload 20 ms of 16 kHz mono s16le PCM (640
// bytes), output one Opus packet.
//
// Client (this file's package, pure Go) is what rspp and the test client
// use; Serve (codec_cgo.go, built only with cgo) is the helper's loop.
package opuscodec
