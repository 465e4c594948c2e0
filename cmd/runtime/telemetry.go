package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/rspp/rspp/supervisor/config"
	"github.com/rspp/rspp/supervisor/session"
	"github.com/rspp/rspp/supervisor/telemetry"
)

// telemetryFlags are the OpenTelemetry outputs every long or short run can
// have: spans to a file, metrics to a file or a Prometheus endpoint.
type telemetryFlags struct {
	traces, metricsFile, metricsAddr string
	setup                            *telemetry.Setup // once started
}

func (t *telemetryFlags) register(f *pflag.FlagSet) {
	f.StringVar(&t.traces, "traces", "", "write OpenTelemetry spans (session > turn > invocation) as JSON to this file")
	f.StringVar(&t.metricsFile, "metrics-file", "", "write OpenTelemetry metrics as JSON to this file (every 10 s and at exit)")
	f.StringVar(&t.metricsAddr, "metrics-addr", "", "serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9464)")
}

// start builds the exporters; the returned stop flushes them. With no flag
// set it returns a nil timeline and a no-op stop.
func (t *telemetryFlags) start(cfg *config.Config) (session.Timeline, func(), error) {
	if t.traces == "" && t.metricsFile == "" && t.metricsAddr == "" {
		return nil, func() {}, nil
	}
	s, err := telemetry.Start(telemetry.Config{TracesFile: t.traces, MetricsFile: t.metricsFile, MetricsAddr: t.metricsAddr, NodeTenants: nodeTenants(cfg)})
	if err != nil {
		return nil, nil, err
	}
	if s.MetricsAddr != "" {
		fmt.Fprintf(os.Stderr, "rspp: metrics at http://%s/metrics\n", s.MetricsAddr)
	}
	t.setup = s
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "rspp: telemetry:", err)
		}
	}
	return s.Recorder, stop, nil
}

// nodeTenants maps each pipeline node to the tenant of the provider that
// serves it, so a tenant node's failures are attributed to that tenant.
func nodeTenants(cfg *config.Config) map[string]string {
	m := map[string]string{}
	for _, n := range cfg.Pipeline.Nodes {
		if p := cfg.Providers[n.Provider]; p != nil && p.Tenant != "" {
			m[n.ID] = p.Tenant
		}
	}
	return m
}
