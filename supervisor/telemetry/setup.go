package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/exporters/stdout/stdoutmetric"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Config says where telemetry goes. Zero value: nowhere (no-op providers).
type Config struct {
	// TracesFile receives finished spans as JSON, one per line.
	TracesFile string
	// MetricsFile receives the metrics as JSON (every 10 s and at
	// shutdown): for one-shot runs that no scraper sees.
	MetricsFile string
	// MetricsAddr serves Prometheus metrics at http://ADDR/metrics.
	MetricsAddr string
	// NodeTenants attributes node failures to the tenant whose code the
	// node runs (see WithNodeTenants).
	NodeTenants map[string]string
}

// Setup builds SDK providers and a Recorder for cfg. Shutdown flushes and
// stops everything (call it after the last session closed).
type Setup struct {
	Recorder    *Recorder
	MetricsAddr string // the bound address, when serving metrics

	shutdowns []func(context.Context) error
	meter     metric.Meter // for ObserveCapacity (capacity.go)
}

// Start builds the providers and exporters.
func Start(cfg Config) (*Setup, error) {
	s := &Setup{}
	topts := []sdktrace.TracerProviderOption{}
	if cfg.TracesFile != "" {
		f, err := os.Create(cfg.TracesFile)
		if err != nil {
			return nil, fmt.Errorf("telemetry: traces file: %w", err)
		}
		exp, err := stdouttrace.New(stdouttrace.WithWriter(f))
		if err != nil {
			f.Close()
			return nil, err
		}
		topts = append(topts, sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(time.Second)))
		s.shutdowns = append(s.shutdowns, func(context.Context) error { return f.Close() })
	}
	tp := sdktrace.NewTracerProvider(topts...)
	mopts := []sdkmetric.Option{}
	if cfg.MetricsAddr != "" {
		reg := prometheus.NewRegistry()
		exp, err := otelprom.New(otelprom.WithRegisterer(reg))
		if err != nil {
			return nil, err
		}
		mopts = append(mopts, sdkmetric.WithReader(exp))
		ln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			return nil, fmt.Errorf("telemetry: metrics address: %w", err)
		}
		s.MetricsAddr = ln.Addr().String()
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		s.shutdowns = append(s.shutdowns, srv.Shutdown)
	}
	if cfg.MetricsFile != "" {
		f, err := os.Create(cfg.MetricsFile)
		if err != nil {
			return nil, fmt.Errorf("telemetry: metrics file: %w", err)
		}
		exp, err := stdoutmetric.New(stdoutmetric.WithWriter(f))
		if err != nil {
			f.Close()
			return nil, err
		}
		mopts = append(mopts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(10*time.Second))))
		s.shutdowns = append(s.shutdowns, func(context.Context) error { return f.Close() })
	}
	mp := sdkmetric.NewMeterProvider(mopts...)
	s.meter = mp.Meter(scope)
	// Providers shut down first (flushing spans), then files and servers.
	s.shutdowns = append([]func(context.Context) error{tp.Shutdown, mp.Shutdown}, s.shutdowns...)
	rec, err := New(tp, mp, WithNodeTenants(cfg.NodeTenants))
	if err != nil {
		_ = s.Shutdown(context.Background())
		return nil, err
	}
	s.Recorder = rec
	return s, nil
}

// Shutdown flushes and stops. Safe to call twice.
func (s *Setup) Shutdown(ctx context.Context) error {
	var errs []error
	for _, f := range s.shutdowns {
		if err := f(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	s.shutdowns = nil
	return errors.Join(errs...)
}
