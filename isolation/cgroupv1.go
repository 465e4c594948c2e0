package isolation

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/containerd/cgroups/v3/cgroup1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// v1Controllers are the v1 hierarchies an envelope lives in. freezer lets
// Kill stop a fork bomb before signalling it.
var v1Controllers = []cgroup1.Name{cgroup1.Memory, cgroup1.Cpu, cgroup1.Cpuacct, cgroup1.Pids, cgroup1.Freezer}

// v1Root holds, per controller, the directory of this process's cgroup
// (memory is typically nested, e.g. /sys/fs/cgroup/memory/<slice>/...).
type v1Root struct {
	subsystems []cgroup1.Subsystem
	dirs       map[cgroup1.Name]string
}

func openV1() (*v1Root, error) {
	all, err := cgroup1.Default()
	if err != nil {
		return nil, fmt.Errorf("%w: cgroup v1: %v", ErrUnsupported, err)
	}
	r := &v1Root{dirs: map[cgroup1.Name]string{}}
	own := cgroup1.NestedPath("")
	for _, s := range all {
		for _, want := range v1Controllers {
			if s.Name() != want {
				continue
			}
			p, ok := s.(interface{ Path(string) string })
			if !ok {
				continue
			}
			rel, err := own(want)
			if err != nil {
				return nil, fmt.Errorf("isolation: own cgroup for %s: %w", want, err)
			}
			r.subsystems = append(r.subsystems, s)
			r.dirs[want] = p.Path(rel)
		}
	}
	return r, nil
}

func (r *v1Root) hierarchy() ([]cgroup1.Subsystem, error) { return r.subsystems, nil }

func (r *v1Root) list() ([]string, error) {
	var out []string
	for _, d := range r.dirs {
		m, err := filepath.Glob(filepath.Join(d, "rspp-*"))
		if err != nil {
			return nil, err
		}
		out = append(out, m...)
	}
	return out, nil
}

func (r *v1Root) create(name string, l Limits) (backend, []string, error) {
	res := &specs.LinuxResources{}
	var degraded []string
	need := func(n cgroup1.Name) error {
		if _, ok := r.dirs[n]; !ok {
			return fmt.Errorf("%w: cgroup v1 controller %q is not mounted", ErrUnsupported, n)
		}
		return nil
	}
	if l.MemoryBytes > 0 {
		if err := need(cgroup1.Memory); err != nil {
			return nil, nil, err
		}
		mem := l.MemoryBytes
		res.Memory = &specs.LinuxMemory{Limit: &mem}
	}
	if l.CPUCores > 0 {
		if err := need(cgroup1.Cpu); err != nil {
			return nil, nil, err
		}
		period := uint64(100_000)
		quota := int64(l.CPUCores * float64(period))
		res.CPU = &specs.LinuxCPU{Quota: &quota, Period: &period}
	}
	if l.Pids > 0 {
		if err := need(cgroup1.Pids); err != nil {
			return nil, nil, err
		}
		pids := l.Pids
		res.Pids = &specs.LinuxPids{Limit: &pids}
	}
	if l.IOWeight > 0 {
		// v1 blkio weights exist only with the CFQ/BFQ schedulers, which
		// modern kernels (blk-mq) no longer have.
		degraded = append(degraded, "io weight (no v1 blkio weight on this kernel)")
	}
	cg, err := cgroup1.New(cgroup1.NestedPath(name), res, cgroup1.WithHierarchy(r.hierarchy))
	if err != nil {
		b := &v1Envelope{root: r, name: name}
		_ = b.remove()
		return nil, nil, err
	}
	return &v1Envelope{root: r, name: name, cg: cg}, degraded, nil
}

type v1Envelope struct {
	root *v1Root
	name string
	cg   cgroup1.Cgroup
}

func (b *v1Envelope) dir(n cgroup1.Name) string {
	d, ok := b.root.dirs[n]
	if !ok {
		return ""
	}
	return filepath.Join(d, b.name)
}

func (b *v1Envelope) add(pid int) error {
	return b.cg.Add(cgroup1.Process{Pid: pid})
}

func (b *v1Envelope) procs() ([]int, error) {
	for _, n := range []cgroup1.Name{cgroup1.Pids, cgroup1.Memory, cgroup1.Cpu} {
		if d := b.dir(n); d != "" {
			return readPids(filepath.Join(d, "cgroup.procs"))
		}
	}
	return nil, fmt.Errorf("%w: no v1 controller to list processes", ErrUnsupported)
}

func (b *v1Envelope) stats() (Stats, error) {
	var st Stats
	if d := b.dir(cgroup1.Memory); d != "" {
		if _, err := os.Stat(d); err != nil {
			return st, err
		}
		st.MemoryBytes = readUint(filepath.Join(d, "memory.usage_in_bytes"))
		st.MemoryPeakBytes = readUint(filepath.Join(d, "memory.max_usage_in_bytes"))
		if lim := readUint(filepath.Join(d, "memory.limit_in_bytes")); lim < 1<<62 {
			st.MemoryLimitBytes = lim
		}
		st.OOMKills = readKV(filepath.Join(d, "memory.oom_control"))["oom_kill"]
	}
	if d := b.dir(cgroup1.Cpuacct); d != "" {
		st.CPUUsageNanos = readUint(filepath.Join(d, "cpuacct.usage"))
	}
	if d := b.dir(cgroup1.Cpu); d != "" {
		kv := readKV(filepath.Join(d, "cpu.stat"))
		st.CPUPeriods, st.CPUThrottled, st.CPUThrottledNanos = kv["nr_periods"], kv["nr_throttled"], kv["throttled_time"]
	}
	if d := b.dir(cgroup1.Pids); d != "" {
		st.Pids = readUint(filepath.Join(d, "pids.current"))
		st.PidsLimit = readUint(filepath.Join(d, "pids.max"))
		st.PidsLimitHits = readKV(filepath.Join(d, "pids.events"))["max"]
	}
	return st, nil
}

func (b *v1Envelope) kill() error {
	if b.cg == nil {
		return nil
	}
	var freeze, thaw func() error
	if b.dir(cgroup1.Freezer) != "" {
		freeze, thaw = b.cg.Freeze, b.cg.Thaw
	}
	return killLoop(b.procs, freeze, thaw)
}

func (b *v1Envelope) cpuWeight(low bool) error {
	d := b.dir(cgroup1.Cpu)
	if d == "" {
		return nil // no cpu controller: nothing to weigh
	}
	shares := "1024"
	if low {
		shares = "2" // the kernel's minimum
	}
	return os.WriteFile(filepath.Join(d, "cpu.shares"), []byte(shares), 0)
}

func (b *v1Envelope) remove() error {
	var first error
	for n := range b.root.dirs {
		if err := removeDir(b.dir(n)); err != nil && first == nil {
			first = err
		}
	}
	return first
}
