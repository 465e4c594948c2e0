package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	rpprof "runtime/pprof"

	"github.com/spf13/pflag"
)

// profileFlags let an operator see where a serving rspp spends its CPU
// and memory: a pprof HTTP endpoint and/or a CPU profile of the whole run.
type profileFlags struct{ addr, cpuFile string }

func (p *profileFlags) register(f *pflag.FlagSet) {
	f.StringVar(&p.addr, "pprof", "", "serve Go pprof at http://ADDR/debug/pprof/ (e.g. 127.0.0.1:6060; keep it on loopback)")
	f.StringVar(&p.cpuFile, "cpuprofile", "", "write a CPU profile of the whole run to this file (go tool pprof)")
}

// start starts what was asked for; stop ends it (the CPU profile is
// written then).
func (p *profileFlags) start() (stop func(), err error) {
	var stops []func()
	stop = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	if p.cpuFile != "" {
		f, err := os.Create(p.cpuFile)
		if err != nil {
			return nil, fmt.Errorf("--cpuprofile: %w", err)
		}
		if err := rpprof.StartCPUProfile(f); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("--cpuprofile: %w", err)
		}
		stops = append(stops, func() { rpprof.StopCPUProfile(); _ = f.Close() })
	}
	if p.addr != "" {
		ln, err := net.Listen("tcp", p.addr)
		if err != nil {
			stop()
			return nil, fmt.Errorf("--pprof: %w", err)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		srv := &http.Server{Handler: mux}
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				fmt.Fprintln(os.Stderr, "rspp: pprof:", err)
			}
		}()
		fmt.Fprintf(os.Stderr, "rspp: pprof at http://%s/debug/pprof/\n", ln.Addr())
		stops = append(stops, func() { _ = srv.Close(); <-done })
	}
	return stop, nil
}
