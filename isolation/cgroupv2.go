package isolation

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/containerd/cgroups/v3/cgroup2"
)

// v2Root is the group (under a cgroup2 mount) envelopes are created in.
type v2Root struct {
	mount  string
	parent string // group path relative to mount, starting with "/"
}

func openV2(mount, parent string) (*v2Root, error) {
	if parent == "" {
		b, err := os.ReadFile("/proc/self/cgroup")
		if err != nil {
			return nil, err
		}
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "0::"); ok {
				parent = rest
			}
		}
		if parent == "" {
			return nil, fmt.Errorf("%w: this process has no cgroup v2 membership", ErrUnsupported)
		}
	}
	if !strings.HasPrefix(parent, "/") {
		parent = "/" + parent
	}
	if _, err := os.Stat(filepath.Join(mount, parent, "cgroup.procs")); err != nil {
		return nil, fmt.Errorf("%w: cgroup v2 parent %s: %v", ErrUnsupported, filepath.Join(mount, parent), err)
	}
	return &v2Root{mount: mount, parent: parent}, nil
}

func (r *v2Root) dir() string { return filepath.Join(r.mount, r.parent) }

func (r *v2Root) list() ([]string, error) {
	return filepath.Glob(filepath.Join(r.dir(), "rspp-*"))
}

// available lists the controllers the parent can hand to its children.
func (r *v2Root) available() map[string]bool {
	out := map[string]bool{}
	b, _ := os.ReadFile(filepath.Join(r.dir(), "cgroup.controllers"))
	for _, c := range strings.Fields(string(b)) {
		out[c] = true
	}
	return out
}

func (r *v2Root) create(name string, l Limits) (backend, []string, error) {
	avail := r.available()
	need := func(c string) error {
		if !avail[c] {
			return fmt.Errorf("%w: cgroup v2 controller %q is not available in %s (cgroup.controllers: %v)",
				ErrUnsupported, c, r.dir(), keys(avail))
		}
		return nil
	}
	res := &cgroup2.Resources{}
	var degraded []string
	if l.MemoryBytes > 0 {
		if err := need("memory"); err != nil {
			return nil, nil, err
		}
		mem := l.MemoryBytes
		swap := int64(0) // a limit that swap could dodge is no limit
		res.Memory = &cgroup2.Memory{Max: &mem, Swap: &swap}
	}
	if l.CPUCores > 0 {
		if err := need("cpu"); err != nil {
			return nil, nil, err
		}
		period := uint64(100_000)
		quota := int64(l.CPUCores * float64(period))
		res.CPU = &cgroup2.CPU{Max: cgroup2.NewCPUMax(&quota, &period)}
	}
	if l.Pids > 0 {
		if err := need("pids"); err != nil {
			return nil, nil, err
		}
		res.Pids = &cgroup2.Pids{Max: l.Pids}
	}
	wantIO := l.IOWeight > 0 && avail["io"]
	if l.IOWeight > 0 && !wantIO {
		degraded = append(degraded, "io weight (no io controller)")
	}
	group := filepath.Join(r.parent, name)
	m, err := cgroup2.NewManager(r.mount, group, res)
	if err != nil {
		return nil, nil, err
	}
	b := &v2Envelope{m: m, dir: filepath.Join(r.mount, group)}
	if wantIO {
		if err := os.WriteFile(filepath.Join(r.dir(), "cgroup.subtree_control"), []byte("+io"), 0); err == nil {
			err = os.WriteFile(filepath.Join(b.dir, "io.weight"), []byte("default "+strconv.Itoa(int(l.IOWeight))), 0)
			if err != nil {
				degraded = append(degraded, "io weight ("+err.Error()+")")
			}
		} else {
			degraded = append(degraded, "io weight ("+err.Error()+")")
		}
	}
	return b, degraded, nil
}

type v2Envelope struct {
	m   *cgroup2.Manager
	dir string
}

func (b *v2Envelope) add(pid int) error { return b.m.AddProc(uint64(pid)) }

func (b *v2Envelope) cpuWeight(low bool) error {
	w := "100" // the default
	if low {
		w = "1"
	}
	err := os.WriteFile(filepath.Join(b.dir, "cpu.weight"), []byte(w), 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // no cpu controller delegated here
	}
	return err
}

func (b *v2Envelope) procs() ([]int, error) {
	return readPids(filepath.Join(b.dir, "cgroup.procs"))
}

func (b *v2Envelope) stats() (Stats, error) {
	var st Stats
	if _, err := os.Stat(b.dir); err != nil {
		return st, err
	}
	f := func(n string) string { return filepath.Join(b.dir, n) }
	st.MemoryBytes = readUint(f("memory.current"))
	st.MemoryPeakBytes = readUint(f("memory.peak"))
	st.MemoryLimitBytes = readUint(f("memory.max"))
	st.OOMKills = readKV(f("memory.events"))["oom_kill"]
	cpu := readKV(f("cpu.stat")) // present without the cpu controller too
	st.CPUUsageNanos = cpu["usage_usec"] * 1000
	st.CPUPeriods, st.CPUThrottled, st.CPUThrottledNanos = cpu["nr_periods"], cpu["nr_throttled"], cpu["throttled_usec"]*1000
	st.Pids = readUint(f("pids.current"))
	st.PidsLimit = readUint(f("pids.max"))
	st.PidsLimitHits = readKV(f("pids.events"))["max"]
	return st, nil
}

func (b *v2Envelope) kill() error {
	// cgroup.kill (5.14+) kills the whole tree atomically, forks included.
	if err := os.WriteFile(filepath.Join(b.dir, "cgroup.kill"), []byte("1"), 0); err != nil {
		if os.IsNotExist(err) {
			if _, serr := os.Stat(b.dir); serr != nil {
				return nil
			}
		}
		return killLoop(b.procs, b.m.Freeze, b.m.Thaw)
	}
	return killLoop(b.procs, nil, nil)
}

func (b *v2Envelope) remove() error { return removeDir(b.dir) }

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
