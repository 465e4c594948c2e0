package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Capacity is the runtime's capacity, load and refusals at one moment
// (admission and pools), as metrics read it.
type Capacity struct {
	Sessions      int
	MaxSessions   int // 0: no limit
	Refused       map[string]int64
	TurnsDeferred int64
	TurnsRejected int64
	Pools         []PoolLoad
}

// PoolLoad is one pool's size and load.
type PoolLoad struct {
	Pool      string
	Instances int // current target size
	Max       int
	Load      int // invocations open or on their way
	Waiting   int // acquires queued for want of a ready instance
}

// ObserveCapacity registers gauges on m read from f at each collection;
// f reports false while there is nothing to observe yet (no runtime).
func ObserveCapacity(m metric.Meter, f func() (Capacity, bool)) error {
	sessions, err := m.Int64ObservableGauge("rspp.sessions", metric.WithDescription("open sessions"))
	if err != nil {
		return err
	}
	maxSessions, err := m.Int64ObservableGauge("rspp.sessions.max", metric.WithDescription("admission.max_sessions (0: no limit)"))
	if err != nil {
		return err
	}
	refused, err := m.Int64ObservableCounter("rspp.admission.refused", metric.WithDescription("sessions refused by admission, by reason"))
	if err != nil {
		return err
	}
	turns, err := m.Int64ObservableCounter("rspp.admission.turns", metric.WithDescription("turns deferred or rejected by a tenant's turn quota (outcome)"))
	if err != nil {
		return err
	}
	size, err := m.Int64ObservableGauge("rspp.pool.instances", metric.WithDescription("instances a pool keeps (its autoscaled target)"))
	if err != nil {
		return err
	}
	load, err := m.Int64ObservableGauge("rspp.pool.load", metric.WithDescription("invocations open or on their way, per pool"))
	if err != nil {
		return err
	}
	waiting, err := m.Int64ObservableGauge("rspp.pool.waiting", metric.WithDescription("invocations waiting for a ready instance, per pool"))
	if err != nil {
		return err
	}
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		c, ok := f()
		if !ok {
			return nil
		}
		o.ObserveInt64(sessions, int64(c.Sessions))
		o.ObserveInt64(maxSessions, int64(c.MaxSessions))
		for reason, n := range c.Refused {
			o.ObserveInt64(refused, n, metric.WithAttributes(attribute.String("reason", reason)))
		}
		o.ObserveInt64(turns, c.TurnsDeferred, metric.WithAttributes(attribute.String("outcome", "defer")))
		o.ObserveInt64(turns, c.TurnsRejected, metric.WithAttributes(attribute.String("outcome", "reject")))
		for _, p := range c.Pools {
			attrs := metric.WithAttributes(attribute.String("pool", p.Pool))
			o.ObserveInt64(size, int64(p.Instances), attrs)
			o.ObserveInt64(load, int64(p.Load), attrs)
			o.ObserveInt64(waiting, int64(p.Waiting), attrs)
		}
		return nil
	}, sessions, maxSessions, refused, turns, size, load, waiting)
	return err
}

// ObserveCapacity registers the capacity gauges on the setup's meters.
func (s *Setup) ObserveCapacity(f func() (Capacity, bool)) error {
	if s.meter == nil {
		return nil
	}
	return ObserveCapacity(s.meter, f)
}
