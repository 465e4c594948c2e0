// Package livekit is the LiveKit transport: rspp as a LiveKit agent worker.
//
// An Agent registers with a LiveKit server as a worker (the agent worker
// protocol over the server's /agent WebSocket, livekit/protocol types),
// reports its load, accepts or rejects job offers, joins each assigned
// room over WebRTC (server-sdk-go + pion) with the job's token, and turns
// every remote participant that publishes a microphone into one session:
// a transports.Conn, served by the supervisor exactly like a WebSocket
// connection, so the same playout buffer and the same egress fence pace
// and cut the agent's audio.
//
// Media: the participant's Opus track is decoded to 16 kHz mono PCM
// frames for the kernel; the agent's 16 kHz frames, handed over at real
// time by the supervisor's playout, are encoded to Opus and written to a
// track published for that participant ("rspp-agent:<identity>"). Opus is
// libopus (cgo) and rspp is cgo-free, so the codec runs in the rspp-opus
// helper processes (package opuscodec). Session information (turn
// lifecycle, transcripts, reply text, fences, errors) goes to the
// participant as reliable data messages on topic "rspp" (JSON, see
// Message).
//
// Policy for input it cannot take: video tracks are not subscribed (the
// participant is told once); a stereo or 48 kHz Opus track is downmixed
// and resampled to 16 kHz mono by the decoder; participants past
// MaxSessionsPerRoom get no session and an error message naming the
// limit; a corrupt packet is dropped and counted, and a run of them ends
// only that session with bad_input.
//
// This package never decides turns and never paces audio itself.
package livekit
