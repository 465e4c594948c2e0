package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/rspp/rspp/supervisor"
	"github.com/rspp/rspp/supervisor/pool"
	"github.com/rspp/rspp/supervisor/telemetry"
)

// printPoolLoad prints a pool's size, load and how its invocations spread.
func printPoolLoad(out io.Writer, p pool.Status) {
	sc := p.Scale
	fmt.Fprintf(out, "  size %d (min %d, max %d), load %d open, %d waiting, scaled up %d, down %d; served %s\n",
		sc.Target, sc.Min, sc.Max, sc.Load, sc.Waiting, sc.ScaleUps, sc.ScaleDowns, kv(p.Served))
}

// printAdmission prints capacity, load and refusals.
func printAdmission(out io.Writer, a *supervisor.AdmissionStatus) {
	if a == nil {
		return
	}
	limit := "no limit"
	if a.MaxSessions > 0 {
		limit = fmt.Sprintf("of %d", a.MaxSessions)
	}
	fmt.Fprintf(out, "admission: %d sessions (%s), admitted %d, refused %s, turns deferred %d, rejected %d\n",
		a.Sessions, limit, a.Admitted, kv(a.Refused), a.TurnsDeferred, a.TurnsRejected)
	names := make([]string, 0, len(a.Tenants))
	for n := range a.Tenants {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		t := a.Tenants[n]
		fmt.Fprintf(out, "  tenant %s: %d sessions (quota %s), %d turns open (quota %s)\n", n, t.Sessions, orNone(t.SessionsQuota), t.Turns, orNone(t.TurnsQuota))
	}
}

func orNone(n int) string {
	if n <= 0 {
		return "none"
	}
	return fmt.Sprint(n)
}

func kv[V int | int64](m map[string]V) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, " ")
}

// observeCapacity exports the running runtime's capacity, load and
// refusals as metrics (when metrics are on).
func (t *telemetryFlags) observeCapacity(rt *atomic.Pointer[supervisor.Runtime]) error {
	if t.setup == nil {
		return nil
	}
	return t.setup.ObserveCapacity(func() (telemetry.Capacity, bool) {
		r := rt.Load()
		if r == nil {
			return telemetry.Capacity{}, false
		}
		return capacityOf(r), true
	})
}

// capacityOf is what the metrics say about r's capacity.
func capacityOf(r *supervisor.Runtime) telemetry.Capacity {
	a := r.Admission()
	c := telemetry.Capacity{Sessions: a.Sessions, MaxSessions: a.MaxSessions, Refused: a.Refused, TurnsDeferred: a.TurnsDeferred, TurnsRejected: a.TurnsRejected}
	for _, p := range r.Status() {
		c.Pools = append(c.Pools, telemetry.PoolLoad{Pool: p.Key, Instances: p.Scale.Target, Max: p.Scale.Max, Load: p.Scale.Load, Waiting: p.Scale.Waiting})
	}
	return c
}
