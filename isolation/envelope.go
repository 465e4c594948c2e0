package isolation

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/containerd/cgroups/v3"
)

// Limits are the resource limits of one plugin instance. Zero means "no
// limit" for that resource (the envelope still accounts for it).
type Limits struct {
	MemoryBytes int64   // memory limit (v1 memory.limit_in_bytes, v2 memory.max)
	CPUCores    float64 // CPU quota in cores per 100 ms period, e.g. 0.5
	Pids        int64   // max tasks (processes and threads: Go plugins need ~10-20)
	IOWeight    uint16  // 1..10000, applied only where the kernel offers an io weight
}

// Stats is a snapshot of one envelope's accounting.
type Stats struct {
	MemoryBytes       uint64 // current usage
	MemoryPeakBytes   uint64 // high-water mark (0 where the kernel has none)
	MemoryLimitBytes  uint64 // effective limit (0: none)
	OOMKills          uint64 // processes the kernel OOM-killed in the envelope
	CPUUsageNanos     uint64 // total CPU time used
	CPUPeriods        uint64 // enforcement periods elapsed (with a quota)
	CPUThrottled      uint64 // periods in which the quota was exhausted
	CPUThrottledNanos uint64 // time spent throttled
	Pids              uint64 // current tasks
	PidsLimit         uint64 // 0: none
	PidsLimitHits     uint64 // forks refused at pids.max
}

// backend is one cgroup version's implementation of an envelope.
type backend interface {
	add(pid int) error
	procs() ([]int, error)
	stats() (Stats, error)
	kill() error // SIGKILL every process, including ones forking right now
	remove() error
	// cpuWeight sets the group's CPU weight relative to its siblings:
	// low while the instance starts, normal once it serves.
	cpuWeight(low bool) error
}

// EnvelopesConfig says where envelopes live.
type EnvelopesConfig struct {
	// V2Mount forces cgroup v2 at this mountpoint (tests use a temporary
	// cgroup2 mount). Empty: detect with cgroups.Mode(); legacy and hybrid
	// machines use v1 controllers, unified ones v2 at /sys/fs/cgroup.
	V2Mount string
	// V2Parent is the group, relative to the v2 mount, under which envelopes
	// are created. Empty: this process's own cgroup. With limits it must be
	// a group whose controllers can be delegated to children (cgroup v2's
	// no-internal-processes rule: run the runtime in a leaf beside it).
	V2Parent string
}

// Envelopes creates and tracks the envelopes of one runtime process. Its
// envelopes are named rspp-<pid>-<start>-<seq>-<instance>: pid and start
// time of the runtime identify envelopes whose owner is gone, so a restarted
// runtime can sweep them without touching live ones of other runtimes.
type Envelopes struct {
	version int // 1 or 2
	v1      *v1Root
	v2      *v2Root
	prefix  string
	seq     atomic.Uint64

	mu     sync.Mutex
	live   map[*Envelope]struct{}
	closed bool
}

// OpenEnvelopes detects the cgroup setup, sweeps stale envelopes of crashed
// runs and returns the runtime's envelope factory.
func OpenEnvelopes(cfg EnvelopesConfig) (*Envelopes, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("%w: cgroup envelopes need root (euid %d)", ErrUnsupported, os.Geteuid())
	}
	start, err := procStartTime(os.Getpid())
	if err != nil {
		return nil, err
	}
	es := &Envelopes{
		prefix: fmt.Sprintf("rspp-%d-%d-", os.Getpid(), start),
		live:   map[*Envelope]struct{}{},
	}
	switch {
	case cfg.V2Mount != "":
		es.version = 2
		es.v2, err = openV2(cfg.V2Mount, cfg.V2Parent)
	case cgroups.Mode() == cgroups.Unified:
		es.version = 2
		es.v2, err = openV2("/sys/fs/cgroup", cfg.V2Parent)
	case cgroups.Mode() == cgroups.Unavailable:
		return nil, fmt.Errorf("%w: no cgroup filesystem mounted", ErrUnsupported)
	default:
		es.version = 1
		es.v1, err = openV1()
	}
	if err != nil {
		return nil, err
	}
	if _, err := es.Sweep(); err != nil {
		return nil, err
	}
	return es, nil
}

// Version is the cgroup version in use: 1 or 2.
func (es *Envelopes) Version() int { return es.version }

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// New creates the envelope of one plugin instance with limits l. instance
// names the node (and replica); tenant is recorded for attribution.
func (es *Envelopes) New(instance, tenant string, l Limits) (*Envelope, error) {
	if err := l.validate(); err != nil {
		return nil, err
	}
	es.mu.Lock()
	defer es.mu.Unlock()
	if es.closed {
		return nil, ErrClosed
	}
	clean := unsafeName.ReplaceAllString(instance, "_")
	if len(clean) > 64 {
		clean = clean[:64]
	}
	name := fmt.Sprintf("%s%d-%s", es.prefix, es.seq.Add(1), clean)
	e := &Envelope{name: name, instance: instance, tenant: tenant, limits: l, owner: es}
	var err error
	if es.version == 1 {
		e.b, e.degraded, err = es.v1.create(name, l)
	} else {
		e.b, e.degraded, err = es.v2.create(name, l)
	}
	if err != nil {
		return nil, fmt.Errorf("isolation: envelope %q: %w", instance, err)
	}
	es.live[e] = struct{}{}
	return e, nil
}

func (l Limits) validate() error {
	if l.MemoryBytes < 0 || l.CPUCores < 0 || l.Pids < 0 || l.IOWeight > 10000 {
		return fmt.Errorf("isolation: invalid limits %+v", l)
	}
	if l.MemoryBytes > 0 && l.MemoryBytes < 4<<20 {
		return fmt.Errorf("isolation: memory limit %d below 4 MiB cannot start a process", l.MemoryBytes)
	}
	return nil
}

// Sweep removes envelopes of runtimes that are no longer running (their
// pid is gone or belongs to a process with another start time), killing any
// process still inside. It returns the names it removed.
func (es *Envelopes) Sweep() ([]string, error) {
	var dirs []string
	var err error
	if es.version == 1 {
		dirs, err = es.v1.list()
	} else {
		dirs, err = es.v2.list()
	}
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	seen := map[string]bool{}
	for _, d := range dirs {
		name := d[strings.LastIndex(d, "/")+1:]
		if !stale(name) {
			continue
		}
		if err := sweepDir(d); err != nil {
			errs = append(errs, err)
			continue
		}
		if !seen[name] {
			seen[name] = true
			removed = append(removed, name)
		}
	}
	return removed, errors.Join(errs...)
}

// stale reports whether an envelope name belongs to a runtime process that
// no longer exists.
func stale(name string) bool {
	parts := strings.SplitN(name, "-", 4)
	if len(parts) < 4 || parts[0] != "rspp" {
		return false
	}
	pid, err1 := strconv.Atoi(parts[1])
	start, err2 := strconv.ParseUint(parts[2], 10, 64)
	if err1 != nil || err2 != nil {
		return false
	}
	got, err := procStartTime(pid)
	return err != nil || got != start
}

// sweepDir kills whatever is left in one cgroup directory, and in the
// cgroups nested below it (a cgroup with children cannot be removed), and
// removes them depth first.
func sweepDir(dir string) error {
	if entries, err := os.ReadDir(dir); err == nil {
		for _, e := range entries {
			if e.IsDir() {
				if err := sweepDir(dir + "/" + e.Name()); err != nil {
					return err
				}
			}
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		pids, _ := readPids(dir + "/cgroup.procs")
		for _, p := range pids {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		err := os.Remove(dir)
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("isolation: sweep %s: %w", dir, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Close closes every envelope still open. The Envelopes cannot be used
// afterwards.
func (es *Envelopes) Close() error {
	es.mu.Lock()
	es.closed = true
	live := make([]*Envelope, 0, len(es.live))
	for e := range es.live {
		live = append(live, e)
	}
	es.mu.Unlock()
	var errs []error
	for _, e := range live {
		errs = append(errs, e.Close())
	}
	return errors.Join(errs...)
}

// Envelope is the cgroup of one plugin instance.
type Envelope struct {
	name     string
	instance string
	tenant   string
	limits   Limits
	degraded []string
	owner    *Envelopes
	b        backend

	mu     sync.Mutex
	closed bool
}

// Name is the cgroup directory name.
func (e *Envelope) Name() string { return e.name }

// Tenant is the tenant the envelope was created for.
func (e *Envelope) Tenant() string { return e.tenant }

// Degraded lists requested limits the kernel could not apply here (today
// only io weight, which needs an io controller with weights).
func (e *Envelope) Degraded() []string { return e.degraded }

// Add moves process pid (all its threads) into the envelope.
func (e *Envelope) Add(pid int) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrClosed
	}
	if err := e.b.add(pid); err != nil {
		return fmt.Errorf("isolation: add pid %d to %s: %w", pid, e.name, err)
	}
	return nil
}

// Pids lists the processes in the envelope (host pid namespace).
func (e *Envelope) Pids() ([]int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, ErrClosed
	}
	return e.b.procs()
}

// Stats reads the envelope's accounting.
func (e *Envelope) Stats() (Stats, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return Stats{}, ErrClosed
	}
	return e.b.stats()
}

// Failure returns a *LimitError if a process of the envelope was OOM-killed
// (ErrOOM) or a fork was refused at pids.max (ErrPidsLimit) since the
// envelope was created, else nil. Call it when the plugin exits: a non-nil
// result is the typed cause to report instead of a generic crash.
func (e *Envelope) Failure() error {
	st, err := e.Stats()
	if err != nil {
		return nil
	}
	return e.failureFrom(st)
}

func (e *Envelope) failureFrom(st Stats) error {
	switch {
	case st.OOMKills > 0:
		return &LimitError{Kind: ErrOOM, Instance: e.instance, Tenant: e.tenant, Count: st.OOMKills,
			Detail: fmt.Sprintf("memory limit %d bytes", e.limits.MemoryBytes)}
	case st.PidsLimitHits > 0:
		return &LimitError{Kind: ErrPidsLimit, Instance: e.instance, Tenant: e.tenant, Count: st.PidsLimitHits,
			Detail: fmt.Sprintf("pids limit %d", e.limits.Pids)}
	}
	return nil
}

// Throttled returns a *LimitError of kind ErrCPUThrottled if the CPU quota
// held the envelope back at least once, else nil. It is informational
// (metrics, timeline), not a failure.
func (e *Envelope) Throttled() error {
	st, err := e.Stats()
	if err != nil || st.CPUThrottled == 0 {
		return nil
	}
	return &LimitError{Kind: ErrCPUThrottled, Instance: e.instance, Tenant: e.tenant, Count: st.CPUThrottled,
		Detail: fmt.Sprintf("quota %.2f cores, throttled %v", e.limits.CPUCores, time.Duration(st.CPUThrottledNanos))}
}

// Starting gives the envelope the lowest CPU weight among its siblings
// until Serving: a plugin starting (a crash loop's restarts included) then
// only takes CPU that serving instances leave, never theirs.
func (e *Envelope) Starting() error { return e.weight(true) }

// Serving gives the envelope the normal CPU weight again.
func (e *Envelope) Serving() error { return e.weight(false) }

func (e *Envelope) weight(low bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	return e.b.cpuWeight(low)
}

// Kill sends SIGKILL to every process in the envelope, including children
// that left the plugin's process group.
func (e *Envelope) Kill() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	return e.b.kill()
}

// Close kills what is left in the envelope and removes its cgroup. It is
// safe to call more than once.
func (e *Envelope) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	kerr := e.b.kill()
	rerr := e.b.remove()
	e.closed = true
	e.owner.mu.Lock()
	delete(e.owner.live, e)
	e.owner.mu.Unlock()
	return errors.Join(kerr, rerr)
}

// procStartTime is field 22 of /proc/<pid>/stat: the process start time in
// clock ticks since boot. With the pid it names a process uniquely.
func procStartTime(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("isolation: malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0, fmt.Errorf("isolation: malformed /proc/%d/stat", pid)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

func readPids(path string) ([]int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if p, err := strconv.Atoi(f); err == nil {
			out = append(out, p)
		}
	}
	return out, nil
}

// readKV reads "key value" lines (cpu.stat, memory.events, pids.events).
func readKV(path string) map[string]uint64 {
	out := map[string]uint64{}
	b, err := os.ReadFile(path)
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 {
			if v, err := strconv.ParseUint(f[1], 10, 64); err == nil {
				out[f[0]] = v
			}
		}
	}
	return out
}

// readUint reads a single-number file; "max" and errors read as 0.
func readUint(path string) uint64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	v, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	return v
}

// killLoop SIGKILLs the processes listed by list until none is left or the
// deadline passes; freeze/thaw (optional) stop a fork bomb from outrunning
// the loop.
func killLoop(list func() ([]int, error), freeze, thaw func() error) error {
	deadline := time.Now().Add(3 * time.Second)
	for {
		if freeze != nil {
			_ = freeze()
		}
		pids, err := list()
		if err != nil {
			if thaw != nil {
				_ = thaw()
			}
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		for _, p := range pids {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		if thaw != nil {
			_ = thaw()
		}
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("isolation: %d processes survived SIGKILL", len(pids))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// removeDir removes an (empty) cgroup directory, retrying while the kernel
// finishes tearing down exited tasks.
func removeDir(dir string) error {
	deadline := time.Now().Add(2 * time.Second)
	for {
		err := os.Remove(dir)
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(5 * time.Millisecond)
	}
}
