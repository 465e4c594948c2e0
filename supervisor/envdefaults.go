package supervisor

import (
	"runtime"
	"time"

	"github.com/rspp/rspp/isolation"
	"github.com/rspp/rspp/supervisor/config"
)

// TrustedCPU is the default CPU quota (cores) of one instance of a
// trusted provider whose config sets no limits.cpu: the machine's CPUs
// shared by the instances the pool may run at once, never less than one
// core. A lone instance of a 2-CPU machine may use both; each of a pool of
// up to 4 gets one. So the default config does not throttle itself on an
// idle machine, while the pool as a whole stays near the machine's size.
// (The built-in profile's fixed 1 core throttled a busy pocketsphinx in
// 86 of 197 periods at 10 sessions with the other core idle.)
func TrustedCPU(cpus, poolMax int) float64 {
	if cpus < 1 {
		cpus = 1
	}
	if poolMax < 1 {
		poolMax = 1
	}
	return max(1, float64(cpus)/float64(min(poolMax, cpus)))
}

// defaultEnvelope applies the defaults that follow the machine and the
// pool to a provider's profile.
func defaultEnvelope(prof *isolation.Profile, p *config.Provider, poolMax int) {
	if p.Profile == "trusted" && p.Limits.CPU == 0 {
		prof.Limits.CPUCores = TrustedCPU(runtime.NumCPU(), poolMax)
	}
}

// wheelResolution is the granularity of the runtime's one timer facility
// (session.Wheel): fed frames are paced, and session deadlines checked, at
// most this late.
const wheelResolution = 2 * time.Millisecond

// sessionTick is how often sessions check their deadlines.
func sessionTick(cfg *config.Config) time.Duration {
	if d := time.Duration(cfg.Runtime.TickInterval); d > 0 {
		return d
	}
	return 20 * time.Millisecond
}

// providerProfile is the isolation profile of a configured provider: its
// profile with its limits, read paths and user applied.
func providerProfile(p *config.Provider, scratchRoot string) (isolation.Profile, error) {
	return isolation.ProfileByName(p.Profile, isolation.Override{
		Limits:      isolation.Limits{MemoryBytes: p.Limits.MemoryMB << 20, CPUCores: p.Limits.CPU, Pids: p.Limits.Pids},
		ReadPaths:   p.ReadPaths,
		RunAsRoot:   p.User == "root",
		ScratchRoot: scratchRoot,
	})
}
