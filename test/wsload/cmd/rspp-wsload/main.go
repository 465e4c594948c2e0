// Command rspp-wsload drives a running `rspp serve --listen` with N
// concurrent WebSocket clients speaking WAV files in real time, and prints
// what they measured (p50/p99):
//
//	rspp-wsload --url ws://127.0.0.1:8080/ws --clients 50 --duration 60s --input in.wav --report load.json
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/rspp/rspp/test/wsload"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := wsload.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rspp-wsload:", err)
		os.Exit(1)
	}
}
