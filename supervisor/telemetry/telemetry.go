// Package telemetry turns the kernel's timeline into OpenTelemetry traces
// and metrics: a span per session, per turn and per node invocation, and
// counters/histograms for turns, failures (by node, kind and tenant) and
// fenced output. It is a timeline tee: it sees exactly the evidence the
// JSON Lines timeline sees, so the two cannot disagree. It must never block
// a session: every call is in-memory bookkeeping; exporting happens in the
// OpenTelemetry SDK's own goroutines.
//
// It imports kernel and supervisor/session (record types) of this module.
package telemetry

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/supervisor/session"
)

// Instrumentation scope name.
const scope = "github.com/rspp/rspp"

// Recorder implements session.Timeline. Safe for concurrent use.
type Recorder struct {
	tracer trace.Tracer

	turns        metric.Int64Counter
	failures     metric.Int64Counter
	egressDrops  metric.Int64Counter
	pressure     metric.Int64Counter
	turnDuration metric.Float64Histogram
	counters     metric.Int64Counter // session_stats: every session's counters, summed

	// nodeTenants attributes a node's failures to the tenant whose code
	// it runs (a tenant provider), before the session's tenant.
	nodeTenants map[string]string

	mu       sync.Mutex
	sessions map[string]*sessionSpans
}

// Option configures a Recorder.
type Option func(*Recorder)

// WithNodeTenants attributes failures of node id -> tenant (the tenant of
// the provider serving it): a resource-limit hit in tenant code is that
// tenant's, whoever's session it served.
func WithNodeTenants(m map[string]string) Option {
	return func(r *Recorder) { r.nodeTenants = m }
}

// tenantOf is the tenant a node's failure is attributed to.
func (r *Recorder) tenantOf(node string, sess *sessionSpans) string {
	if t := r.nodeTenants[node]; t != "" {
		return t
	}
	return sess.tenant
}

type sessionSpans struct {
	tenant string
	ctx    context.Context
	span   trace.Span
	turns  map[string]*turnSpan
}

type turnSpan struct {
	ctx         context.Context
	span        trace.Span
	openedMono  int64
	outcome     string
	invocations map[string]trace.Span
}

// New makes a Recorder on the given providers (use the SDK's, or the
// global no-op ones to disable).
func New(tp trace.TracerProvider, mp metric.MeterProvider, opts ...Option) (*Recorder, error) {
	m := mp.Meter(scope)
	r := &Recorder{tracer: tp.Tracer(scope), sessions: map[string]*sessionSpans{}}
	for _, o := range opts {
		o(r)
	}
	var err error
	if r.turns, err = m.Int64Counter("rspp.turns", metric.WithDescription("accepted turns by terminal outcome (commit|abort)")); err != nil {
		return nil, err
	}
	if r.failures, err = m.Int64Counter("rspp.node.failures", metric.WithDescription("failed node invocations by node, kind and tenant")); err != nil {
		return nil, err
	}
	if r.egressDrops, err = m.Int64Counter("rspp.egress.dropped", metric.WithDescription("output dropped at the egress fence")); err != nil {
		return nil, err
	}
	if r.pressure, err = m.Int64Counter("rspp.lane.pressure", metric.WithDescription("watermark pressure actions")); err != nil {
		return nil, err
	}
	if r.turnDuration, err = m.Float64Histogram("rspp.turn.duration", metric.WithUnit("s"), metric.WithDescription("turn_open to turn_close")); err != nil {
		return nil, err
	}
	if r.counters, err = m.Int64Counter("rspp.session.counters", metric.WithDescription("a closed session's gateway, lane, fence and driver counters (session_stats), by counter")); err != nil {
		return nil, err
	}
	return r, nil
}

// Append consumes one timeline record.
func (r *Recorder) Append(rec kernel.TimelineRecord) {
	if rec.Type == session.TypeSessionStats {
		r.addCounters(rec)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	sess := r.sessions[rec.SessionID]
	if sess == nil {
		if rec.Type != "session_open" {
			return // a session opened before the recorder: nothing to attach to
		}
		sess = &sessionSpans{tenant: rec.Attrs["tenant_id"], turns: map[string]*turnSpan{}}
		sess.ctx, sess.span = r.tracer.Start(context.Background(), "session",
			trace.WithAttributes(attribute.String("rspp.session_id", rec.SessionID), attribute.String("rspp.tenant_id", sess.tenant)))
		r.sessions[rec.SessionID] = sess
		return
	}
	ctx := context.Background()
	base := []attribute.KeyValue{attribute.String("rspp.session_id", rec.SessionID), attribute.String("rspp.turn_id", rec.TurnID)}
	t := sess.turns[rec.TurnID]
	switch rec.Type {
	case "turn_open":
		attrs := append(base, attribute.String("rspp.plan_hash", rec.Attrs["plan_hash"]))
		for k, v := range rec.Attrs {
			if strings.HasPrefix(k, "binding.") {
				attrs = append(attrs, attribute.String("rspp."+k, v))
			}
		}
		t = &turnSpan{openedMono: rec.MonoNanos, invocations: map[string]trace.Span{}}
		t.ctx, t.span = r.tracer.Start(sess.ctx, "turn", trace.WithAttributes(attrs...))
		sess.turns[rec.TurnID] = t
	case "invocation_start":
		if t != nil {
			_, sp := r.tracer.Start(t.ctx, "invoke "+rec.NodeID, trace.WithAttributes(append(base,
				attribute.String("rspp.node_id", rec.NodeID), attribute.String("rspp.invocation_id", rec.InvocationID),
				attribute.String("rspp.binding", rec.Attrs["binding"]), attribute.String("rspp.attempt", rec.Attrs["attempt"]))...))
			t.invocations[rec.InvocationID] = sp
		}
	case "invocation_end":
		if t != nil {
			r.endInvocation(t, rec.InvocationID, codes.Ok, "")
		}
	case "invocation_fail":
		kind := rec.Attrs["kind"]
		tenant := r.tenantOf(rec.NodeID, sess)
		r.failures.Add(ctx, 1, metric.WithAttributes(attribute.String("node", rec.NodeID), attribute.String("kind", kind),
			attribute.String("tenant", tenant), attribute.String("decision", rec.Attrs["decision"])))
		if t != nil {
			if sp := t.invocations[rec.InvocationID]; sp != nil {
				sp.SetAttributes(attribute.String("rspp.failure_kind", kind), attribute.String("rspp.node_tenant", tenant))
			}
			r.endInvocation(t, rec.InvocationID, codes.Error, rec.Reason)
		}
	case "turn_commit", "turn_abort":
		if t != nil {
			t.outcome = strings.TrimPrefix(rec.Type, "turn_")
			if rec.Type == "turn_abort" {
				t.span.SetStatus(codes.Error, rec.Reason)
			}
			t.span.SetAttributes(attribute.String("rspp.outcome", t.outcome), attribute.String("rspp.reason", rec.Reason))
		}
		r.turns.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", strings.TrimPrefix(rec.Type, "turn_")), attribute.String("tenant", sess.tenant)))
	case "turn_close":
		if t != nil {
			for id := range t.invocations {
				r.endInvocation(t, id, codes.Unset, "")
			}
			r.turnDuration.Record(ctx, time.Duration(rec.MonoNanos-t.openedMono).Seconds(), metric.WithAttributes(attribute.String("outcome", t.outcome)))
			t.span.End()
			delete(sess.turns, rec.TurnID)
		}
	case "egress_drop":
		n, _ := strconv.Atoi(rec.Attrs["count"])
		if n == 0 {
			n = 1
		}
		r.egressDrops.Add(ctx, int64(n), metric.WithAttributes(attribute.String("tenant", sess.tenant)))
	case "pressure":
		r.pressure.Add(ctx, 1, metric.WithAttributes(attribute.String("action", rec.Reason)))
	case "session_close":
		for id, t := range sess.turns {
			t.span.End()
			delete(sess.turns, id)
		}
		sess.span.End()
		delete(r.sessions, rec.SessionID)
	default:
		if t != nil {
			t.span.AddEvent(rec.Type, trace.WithAttributes(attribute.String("rspp.reason", rec.Reason), attribute.String("rspp.node_id", rec.NodeID)))
		}
	}
}

func (r *Recorder) endInvocation(t *turnSpan, id string, code codes.Code, msg string) {
	sp := t.invocations[id]
	if sp == nil {
		return
	}
	if code != codes.Unset {
		sp.SetStatus(code, msg)
	}
	sp.End()
	delete(t.invocations, id)
}

// addCounters adds a session_stats record's counters to rspp.session.counters.
func (r *Recorder) addCounters(rec kernel.TimelineRecord) {
	ctx := context.Background()
	for name, v := range rec.Attrs {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
			r.counters.Add(ctx, n, metric.WithAttributes(attribute.String("counter", name)))
		}
	}
}
