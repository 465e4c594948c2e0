// Package web is the browser page of the WebSocket transport: static
// files (HTML, CSS, an ES module and the AudioWorklet processors), served
// as they are by `rspp serve --listen` at `/`. There is no build step.
//
// The page speaks transports/websocket/PROTOCOL.md: it captures the
// microphone through an AudioWorklet resampled to 16 kHz mono s16le 20 ms
// frames, plays agent audio through a small WebAudio buffer that a
// `fence{turn}` message flushes at once, reports what it played, and shows
// the transcript, the reply and a timeline of turns. It records what it
// handed to the audio output per turn and exposes it as window.rsppTest,
// read by the browser test in test/browser.
//
// This package holds no Go logic; it must never import anything.
package web

import "embed"

// Files are the page's files, at the root of the FS: index.html, app.js,
// worklet.js and style.css.
//
//go:embed index.html app.js worklet.js style.css
var Files embed.FS
