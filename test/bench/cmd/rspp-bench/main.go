// Command rspp-bench is the driver behind `make bench`: it measures the
// frame round trip through RSPP's plugin boundary against a bare go-plugin
// gRPC stream and a raw unix socket in one interleaved run, folds in the Go
// benchmark output given with -gobench, and writes bench/results.json.
//
//	go run ./test/bench/cmd/rspp-bench -gobench bench/gobench.txt -out bench/results.json
//
// It re-executes itself as its plugin processes.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/rspp/rspp/test/bench"
)

func main() {
	bench.ServePluginIfAsked() // never returns in a plugin process
	// On Ctrl-C the measurement is cancelled and the plugins are stopped
	// before exit, instead of being left to Pdeathsig.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := bench.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rspp-bench:", err)
		os.Exit(1)
	}
}
