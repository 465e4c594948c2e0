// Package web holds the browser page of the WebSocket transport, embedded
// so that `rspp serve --listen` needs no files beside its binary.
//
// This is a placeholder until the page lands: it only says where the
// endpoint is.
package web

import "embed"

// Files is the page, served at / by transports/websocket.
//
//go:embed index.html
var Files embed.FS
