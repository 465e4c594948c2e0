package supervisor

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/supervisor/config"
	"github.com/rspp/rspp/supervisor/pool"
)

// ErrAdmission: the runtime refused a session (it is full, the tenant is
// at its quota, or the pools' envelopes have no headroom). It unwraps
// from every *AdmissionError.
var ErrAdmission = errors.New("admission refused")

// Admission reasons (AdmissionError.Reason, pre_turn_* record reasons).
const (
	ReasonMaxSessions    = "max_sessions"
	ReasonTenantSessions = "tenant_sessions"
	ReasonTenantTurns    = "tenant_turns"
	ReasonMemoryHeadroom = "memory_headroom"
	ReasonCPUHeadroom    = "cpu_headroom"
)

// AdmissionError says why a session was refused and at what limit.
type AdmissionError struct {
	Reason string // one of the Reason* constants
	Tenant string
	Limit  int    // the limit reached (sessions), 0 for headroom
	Detail string // e.g. which pool lacks headroom
}

func (e *AdmissionError) Error() string {
	s := "session refused: " + e.Reason
	if e.Tenant != "" {
		s += " (tenant " + e.Tenant + ")"
	}
	if e.Limit > 0 {
		s += fmt.Sprintf(": at its limit of %d", e.Limit)
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

func (e *AdmissionError) Unwrap() error { return ErrAdmission }

// admission is the runtime's RK-10 admission control: session limits
// (runtime, per tenant, envelope headroom) at OpenSession and a per-tenant
// bound on open turns as the kernel's pre-turn Admitter. Its counters are
// bounded by the number of tenants seen.
type admission struct {
	rt *Runtime

	mu       sync.Mutex
	sessions int
	tenants  map[string]*tenantLoad
	refused  map[string]int64 // reason -> sessions refused
	admitted int64
	deferred int64 // turns deferred (pre_turn_defer)
	turnsOut int64 // turns rejected after their defers
	// headroom sample: checked at most every headroomEvery.
	sampledAt time.Time
	sampleErr *AdmissionError
	throttle  map[string][2]uint64 // envelope -> periods, throttled at the last sample
}

type tenantLoad struct {
	sessions int
	turns    int // open turns (admitted, not yet ended)
}

const headroomEvery = 500 * time.Millisecond

func newAdmission(rt *Runtime) *admission {
	return &admission{rt: rt, tenants: map[string]*tenantLoad{}, refused: map[string]int64{}, throttle: map[string][2]uint64{}}
}

func quota(cfg config.Admission, tenant string) config.TenantQuota {
	q := config.TenantQuota{Sessions: cfg.TenantSessions, Turns: cfg.TenantTurns}
	if t, ok := cfg.Tenants[tenant]; ok {
		if t.Sessions > 0 {
			q.Sessions = t.Sessions
		}
		if t.Turns > 0 {
			q.Turns = t.Turns
		}
	}
	return q
}

func (a *admission) tenantLocked(t string) *tenantLoad {
	tl := a.tenants[t]
	if tl == nil {
		tl = &tenantLoad{}
		a.tenants[t] = tl
	}
	return tl
}

// admitSession takes a session slot for tenant or says why not. The
// returned release gives it back (safe to call twice).
func (a *admission) admitSession(tenant string) (release func(), err error) {
	cfg := a.rt.Config().Admission
	if err := a.headroom(cfg); err != nil {
		a.mu.Lock()
		a.refused[err.Reason]++
		a.mu.Unlock()
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	tl := a.tenantLocked(tenant)
	q := quota(cfg, tenant)
	var refuse *AdmissionError
	switch {
	case cfg.MaxSessions > 0 && a.sessions >= cfg.MaxSessions:
		refuse = &AdmissionError{Reason: ReasonMaxSessions, Limit: cfg.MaxSessions}
	case q.Sessions > 0 && tl.sessions >= q.Sessions:
		refuse = &AdmissionError{Reason: ReasonTenantSessions, Tenant: tenant, Limit: q.Sessions}
	}
	if refuse != nil {
		a.refused[refuse.Reason]++
		return nil, refuse
	}
	a.sessions++
	tl.sessions++
	a.admitted++
	var once sync.Once
	return func() {
		once.Do(func() {
			a.mu.Lock()
			a.sessions--
			tl.sessions--
			a.mu.Unlock()
		})
	}, nil
}

// headroom checks the shared pools' envelopes: memory use against their
// limit, and the share of CPU periods throttled since the last sample.
func (a *admission) headroom(cfg config.Admission) *AdmissionError {
	if cfg.MemoryHeadroom <= 0 && cfg.CPUHeadroom <= 0 {
		return nil
	}
	now := time.Now()
	a.mu.Lock()
	if now.Sub(a.sampledAt) < headroomEvery {
		err := a.sampleErr
		a.mu.Unlock()
		return err
	}
	a.sampledAt = now
	a.mu.Unlock()
	var found *AdmissionError
	for _, p := range a.rt.sharedPools() {
		for _, inst := range p.Instances() {
			if inst.Envelope() == nil || inst.State() != pool.Ready {
				continue
			}
			st, err := inst.Envelope().Stats()
			if err != nil {
				continue
			}
			if cfg.MemoryHeadroom > 0 && st.MemoryLimitBytes > 0 &&
				float64(st.MemoryLimitBytes-min(st.MemoryBytes, st.MemoryLimitBytes)) < cfg.MemoryHeadroom*float64(st.MemoryLimitBytes) && found == nil {
				found = &AdmissionError{Reason: ReasonMemoryHeadroom, Detail: fmt.Sprintf("instance %s uses %d of %d bytes", inst.Name(), st.MemoryBytes, st.MemoryLimitBytes)}
			}
			a.mu.Lock()
			prev := a.throttle[inst.Name()]
			a.throttle[inst.Name()] = [2]uint64{st.CPUPeriods, st.CPUThrottled}
			a.mu.Unlock()
			if dp := st.CPUPeriods - prev[0]; cfg.CPUHeadroom > 0 && prev[0] > 0 && dp > 0 && found == nil {
				if share := float64(st.CPUThrottled-prev[1]) / float64(dp); share > 1-cfg.CPUHeadroom {
					found = &AdmissionError{Reason: ReasonCPUHeadroom, Detail: fmt.Sprintf("instance %s throttled in %.0f%% of its CPU periods", inst.Name(), 100*share)}
				}
			}
		}
	}
	a.mu.Lock()
	for name := range a.throttle { // forget instances that are gone: bounded by live instances
		if a.rt.instanceByName(name) == nil {
			delete(a.throttle, name)
		}
	}
	a.sampleErr = found
	a.mu.Unlock()
	return found
}

// turnAdmitter is one session's pre-turn admission: its tenant may have
// at most Turns turns open at once. A turn over it is deferred (the kernel
// re-proposes it, then rejects it after kernel.MaxDefers); other tenants'
// turns are never counted against it. It runs on the session goroutine
// and sees the session's own records (Append) to count turns out.
type turnAdmitter struct {
	a        *admission
	tenant   string
	reserved bool // admitted, turn_open not yet seen
	open     int  // this session's open turns (0 or 1)
}

func (a *admission) forSession(tenant string) *turnAdmitter {
	return &turnAdmitter{a: a, tenant: tenant}
}

func (t *turnAdmitter) Admit(in kernel.TurnIntent) kernel.Decision {
	q := quota(t.a.rt.Config().Admission, t.tenant)
	if q.Turns <= 0 {
		return kernel.Decision{Outcome: kernel.Admit}
	}
	a := t.a
	a.mu.Lock()
	defer a.mu.Unlock()
	tl := a.tenantLocked(t.tenant)
	if tl.turns >= q.Turns {
		if in.Attempt >= kernel.MaxDefers {
			a.turnsOut++
		} else {
			a.deferred++
		}
		return kernel.Decision{Outcome: kernel.Defer, Reason: fmt.Sprintf("%s: tenant %q has %d of %d turns open", ReasonTenantTurns, t.tenant, tl.turns, q.Turns)}
	}
	tl.turns++
	t.reserved = true
	return kernel.Decision{Outcome: kernel.Admit}
}

// record follows the session's turn lifecycle to give turn slots back.
func (t *turnAdmitter) record(typ string) {
	if !t.reserved && t.open == 0 {
		return
	}
	a := t.a
	a.mu.Lock()
	defer a.mu.Unlock()
	tl := a.tenantLocked(t.tenant)
	switch typ {
	case "turn_open":
		if t.reserved {
			t.reserved, t.open = false, t.open+1
		}
	case "pre_turn_reject": // admitted, then refused (plan): never opened
		if t.reserved {
			t.reserved = false
			tl.turns--
		}
	case "turn_commit", "turn_abort":
		if t.open > 0 {
			t.open--
			tl.turns--
		}
	}
}

// AdmissionStatus is capacity, load and refusals for status and metrics.
type AdmissionStatus struct {
	MaxSessions    int                     `json:"max_sessions"` // 0: no limit
	Sessions       int                     `json:"sessions"`
	Admitted       int64                   `json:"admitted"`
	Refused        map[string]int64        `json:"refused,omitempty"` // reason -> sessions
	TurnsDeferred  int64                   `json:"turns_deferred"`
	TurnsRejected  int64                   `json:"turns_rejected"`
	Tenants        map[string]TenantStatus `json:"tenants,omitempty"`
	MemoryHeadroom float64                 `json:"memory_headroom,omitempty"`
	CPUHeadroom    float64                 `json:"cpu_headroom,omitempty"`
}

// TenantStatus is one tenant's load against its quota.
type TenantStatus struct {
	Sessions      int `json:"sessions"`
	SessionsQuota int `json:"sessions_quota,omitempty"`
	Turns         int `json:"turns"`
	TurnsQuota    int `json:"turns_quota,omitempty"`
}

func (a *admission) status() AdmissionStatus {
	cfg := a.rt.Config().Admission
	a.mu.Lock()
	defer a.mu.Unlock()
	st := AdmissionStatus{MaxSessions: cfg.MaxSessions, Sessions: a.sessions, Admitted: a.admitted, Refused: map[string]int64{},
		TurnsDeferred: a.deferred, TurnsRejected: a.turnsOut, Tenants: map[string]TenantStatus{},
		MemoryHeadroom: cfg.MemoryHeadroom, CPUHeadroom: cfg.CPUHeadroom}
	for r, n := range a.refused {
		st.Refused[r] = n
	}
	names := make([]string, 0, len(a.tenants))
	for name := range a.tenants {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		tl := a.tenants[name]
		if tl.sessions == 0 && tl.turns == 0 {
			continue
		}
		q := quota(cfg, name)
		key := name
		if key == "" {
			key = defaultTenant
		}
		st.Tenants[key] = TenantStatus{Sessions: tl.sessions, SessionsQuota: q.Sessions, Turns: tl.turns, TurnsQuota: q.Turns}
	}
	return st
}

// Admission is the runtime's admission status.
func (rt *Runtime) Admission() AdmissionStatus { return rt.adm.status() }

// sharedPools lists the current shared (trusted) pools.
func (rt *Runtime) sharedPools() []*pool.Pool {
	rt.mu.RLock()
	defer rt.mu.RUnlock()
	var out []*pool.Pool
	for _, key := range rt.current {
		if p := rt.pools[key]; p != nil {
			out = append(out, p)
		}
	}
	return out
}

// instanceByName finds a live instance of any pool (nil if none).
func (rt *Runtime) instanceByName(name string) *pool.Instance {
	rt.mu.RLock()
	pools := make([]*pool.Pool, 0, len(rt.pools))
	for _, p := range rt.pools {
		pools = append(pools, p)
	}
	rt.mu.RUnlock()
	for _, p := range pools {
		if inst := p.PoolInstance(name); inst != nil {
			return inst
		}
	}
	return nil
}
