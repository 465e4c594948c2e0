// Package app holds the runtime's applications, each a way of serving a
// supervisor Runtime: RunFile (rspp run: one WAV in, one session, a
// summary out) and Serve (rspp serve: scripted sessions from WAVs, the
// WebSocket listener with its browser page, the LiveKit agent worker, the
// admin socket and SIGHUP reload).
//
// It may import supervisor, its rooms (pool, session, load, admin) and
// transports; nothing in supervisor imports it. cmd/runtime parses flags
// into its options.
package app
