package pool

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/rspp/rspp/externalnode"
)

// Info is what the pool's plugin reported (name, version).
func (p *Pool) Info() externalnode.Info {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.info
}

// Instances lists the pool's current (starting, ready, draining) instances.
func (p *Pool) Instances() []*Instance {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.insts)
}

// Pids lists the pool's live plugin process ids.
func (p *Pool) Pids() []int {
	var pids []int
	for _, inst := range p.Instances() {
		pids = append(pids, inst.Pid())
	}
	return pids
}

// OpenInvocations counts invocations in flight on the pool's instances.
func (p *Pool) OpenInvocations() int {
	n := 0
	for _, inst := range p.Instances() {
		n += inst.node.OpenInvocations()
	}
	return n
}

// Status is a snapshot for the admin API and reports.
type Status struct {
	Key       string            `json:"key"`
	Provider  string            `json:"provider"`
	Version   string            `json:"version"`
	Tenant    string            `json:"tenant,omitempty"`  // a tenant's pool
	Session   string            `json:"session,omitempty"` // a session's pool
	Instances map[string]string `json:"instances"`         // name -> state
	Pids      []int             `json:"pids,omitempty"`
	Crashes   map[string]int    `json:"crashes,omitempty"`
	Restarts  int               `json:"restarts"`
	Circuit   string            `json:"circuit,omitempty"` // why it is open
	// Served counts invocations opened per current instance; Scale is
	// the pool's size and load.
	Served map[string]int64 `json:"served,omitempty"`
	Scale  ScaleStatus      `json:"scale"`
	// PidOf is each current instance's process id.
	PidOf map[string]int `json:"pid_of,omitempty"`
	// Builtin names the builtin serving a builtin provider's pool in
	// the supervisor's process (supervisor/builtin): no process, no pids.
	Builtin string `json:"builtin,omitempty"`
}

// Status is a snapshot of the pool.
func (p *Pool) Status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := Status{Key: p.cfg.Key, Provider: p.cfg.Provider, Version: p.info.Version, Tenant: p.cfg.Tenant, Session: p.cfg.Session,
		Instances: map[string]string{}, Crashes: map[string]int{}, Restarts: p.restarts,
		Served: map[string]int64{}, Scale: p.scaleStatusLocked(), PidOf: map[string]int{}}
	for _, inst := range p.insts {
		st.Instances[inst.name] = inst.State().String()
		st.Served[inst.name] = inst.Served()
		st.PidOf[inst.name] = inst.Pid()
		st.Pids = append(st.Pids, inst.Pid())
	}
	for k, n := range p.crashes {
		st.Crashes[string(k)] = n
	}
	if p.circuit != nil {
		st.Circuit = p.circuit.Error()
	}
	return st
}

// CheckHealth asks every instance whether it serves; the first failure is
// returned.
func (p *Pool) CheckHealth(ctx context.Context) error {
	insts := p.Instances()
	if len(insts) == 0 {
		return fmt.Errorf("provider %s (%s): no instance", p.cfg.Provider, p.cfg.Key)
	}
	for _, inst := range insts {
		if inst.State() != Ready {
			return fmt.Errorf("instance %s is %s", inst.name, inst.State())
		}
		if _, err := inst.node.Health(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Drain stops the pool gracefully: no restarts, no new invocations, each
// instance finishes its open invocations (until ctx ends), then stops.
// Safe to call twice and with Close; it blocks until the pool's goroutines
// have ended.
func (p *Pool) Drain(ctx context.Context) {
	p.closeOnce.Do(func() {
		defer close(p.closeDone)
		p.mu.Lock()
		p.closed = true
		close(p.stop)
		insts := p.insts
		p.insts = nil
		close(p.readyWake)
		p.readyWake = make(chan struct{})
		p.mu.Unlock()
		for _, inst := range insts {
			_ = inst.move(Draining)
		}
		for _, inst := range insts {
			for inst.node.OpenInvocations() > 0 && inst.node.Err() == nil && ctx.Err() == nil {
				select {
				case <-ctx.Done():
				case <-inst.node.Done():
				case <-time.After(10 * time.Millisecond):
				}
			}
		}
		p.cancel()
		var wg sync.WaitGroup
		for _, inst := range insts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if inst.move(Stopped) != nil {
					_ = inst.died() // it died while draining
				}
				// Nothing is open on it any more, and go-plugin's graceful
				// stop takes ~1 s per plugin: kill it, release only reaps.
				inst.kill()
				inst.release()
			}()
		}
		wg.Wait()
		p.wg.Wait()
		p.emit(Event{Type: "stopped"})
	})
	<-p.closeDone
}

// Close stops every instance now (in-flight invocations end with an
// error) and waits for the pool's goroutines. Safe to call twice.
func (p *Pool) Close() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p.Drain(ctx)
}

// PidLog remembers every plugin process a runtime started, so a leftover
// check can prove none of them outlived it. A pid is kept with its start
// time, so a recycled pid is not taken for a survivor.
type PidLog struct {
	mu    sync.Mutex
	procs []proc
}

type proc struct {
	pid   int
	start string // field 22 of /proc/<pid>/stat
}

func (l *PidLog) add(pid int) {
	l.mu.Lock()
	l.procs = append(l.procs, proc{pid: pid, start: procStart(pid)})
	l.mu.Unlock()
}

// All lists every pid recorded.
func (l *PidLog) All() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]int, 0, len(l.procs))
	for _, p := range l.procs {
		out = append(out, p.pid)
	}
	return out
}

// Alive lists the recorded processes that still run (zombies count as
// gone).
func (l *PidLog) Alive() []int {
	l.mu.Lock()
	procs := slices.Clone(l.procs)
	l.mu.Unlock()
	var out []int
	for _, p := range procs {
		if externalnode.ProcessAlive(p.pid) && procStart(p.pid) == p.start {
			out = append(out, p.pid)
		}
	}
	return out
}

// procStart is the process start time (clock ticks since boot), "" if gone.
func procStart(pid int) string {
	if st := externalnode.ProcStat(pid); len(st) > 19 {
		return st[19] // field 22 overall; st[0] is field 3
	}
	return ""
}

// PoolInstance finds a current instance by name (nil if gone).
func (p *Pool) PoolInstance(name string) *Instance {
	for _, inst := range p.Instances() {
		if inst.name == name {
			return inst
		}
	}
	return nil
}
