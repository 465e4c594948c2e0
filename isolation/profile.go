package isolation

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// Profile is how far a plugin is trusted. It comes from the runtime config
// (a profile name per node, optional per-tenant overrides) and is applied
// by RunnerFunc and the sandbox entry point.
type Profile struct {
	Name   string // "trusted", "tenant" or a configured name
	Limits Limits

	// Namespaces: new net, pid, mount, ipc and uts namespaces. The plugin
	// sees only a loopback interface that is down, and no other process.
	Namespaces bool
	// UserNS: a user namespace in which the plugin is root without
	// capabilities, mapped to the unprivileged host UID/GID.
	UserNS   bool
	UID, GID int // host ids the user namespace maps to (default 65534)

	// Landlock: the filesystem is read-only, and only ReadPaths (plus the
	// plugin binary) are readable at all; the instance's scratch dir and
	// go-plugin's socket dir are the only writable places. TCP bind and
	// connect are denied, and signals cannot leave the sandbox.
	Landlock  bool
	ReadPaths []string
	// Seccomp: deny ptrace, mount, module, bpf, namespace, keyring,
	// io_uring and raw/packet socket system calls with EPERM.
	Seccomp bool
	// DropCaps clears every capability (bounding, ambient, effective,
	// permitted, inheritable) before exec.
	DropCaps bool
	// SkipHostEnv: the plugin gets no variable of the runtime's
	// environment, only go-plugin's handshake variables and its own Env.
	// Set go-plugin's ClientConfig.SkipHostEnv from it; RunnerFunc also
	// strips host variables itself.
	SkipHostEnv bool

	// ScratchRoot: each instance gets ScratchRoot/<envelope name>, created
	// on start (owned by UID when UserNS) and removed when it exits. It is
	// the plugin's working directory and TMPDIR. Empty: no scratch dir.
	ScratchRoot string
	// NoFile is RLIMIT_NOFILE; FileSize is RLIMIT_FSIZE in bytes (0: keep).
	NoFile   uint64
	FileSize uint64
	// EntryPath is the sandbox entry binary: a binary whose main calls
	// MaybeSandboxMain first (default: this executable). With UserNS it must
	// be executable by UID (a world-executable path).
	EntryPath string
}

// DefaultReadPaths are what a dynamically or statically linked plugin
// needs to load and to make TLS and time zone work.
var DefaultReadPaths = []string{
	"/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin",
	"/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/localtime", "/etc/ssl", "/etc/ca-certificates",
	"/dev/null", "/dev/zero", "/dev/urandom", "/dev/random", "/proc/self",
}

// Override changes parts of a profile, e.g. for one tenant. Zero fields
// keep the profile's value.
type Override struct {
	Limits      Limits
	ReadPaths   []string // added to the profile's
	ScratchRoot string
}

// Profiles maps profile names to profiles; the runtime config adds or
// replaces entries. Built in: "trusted" and "tenant".
type Profiles map[string]Profile

// BuiltinProfiles returns the two built-in profiles with default limits.
func BuiltinProfiles() Profiles {
	return Profiles{
		"trusted": {
			Name:   "trusted",
			Limits: Limits{MemoryBytes: 1 << 30, CPUCores: 1, Pids: 256},
			NoFile: 4096,
		},
		"tenant": {
			Name:        "tenant",
			Limits:      Limits{MemoryBytes: 256 << 20, CPUCores: 0.5, Pids: 64},
			Namespaces:  true,
			UserNS:      true,
			UID:         65534,
			GID:         65534,
			Landlock:    true,
			ReadPaths:   append([]string(nil), DefaultReadPaths...),
			Seccomp:     true,
			DropCaps:    true,
			SkipHostEnv: true,
			ScratchRoot: filepath.Join(os.TempDir(), "rspp-scratch"),
			NoFile:      256,
			FileSize:    64 << 20,
		},
	}
}

// ProfileByName returns a built-in profile with overrides applied in order
// (e.g. the tenant's). An unknown name is ErrUnknownProfile.
func ProfileByName(name string, overrides ...Override) (Profile, error) {
	return BuiltinProfiles().Get(name, overrides...)
}

// Get returns the named profile with overrides applied in order.
func (ps Profiles) Get(name string, overrides ...Override) (Profile, error) {
	p, ok := ps[name]
	if !ok {
		names := make([]string, 0, len(ps))
		for n := range ps {
			names = append(names, n)
		}
		sort.Strings(names)
		return Profile{}, fmt.Errorf("%w: %q (known: %v)", ErrUnknownProfile, name, names)
	}
	p.ReadPaths = append([]string(nil), p.ReadPaths...)
	for _, o := range overrides {
		if o.Limits.MemoryBytes != 0 {
			p.Limits.MemoryBytes = o.Limits.MemoryBytes
		}
		if o.Limits.CPUCores != 0 {
			p.Limits.CPUCores = o.Limits.CPUCores
		}
		if o.Limits.Pids != 0 {
			p.Limits.Pids = o.Limits.Pids
		}
		if o.Limits.IOWeight != 0 {
			p.Limits.IOWeight = o.Limits.IOWeight
		}
		p.ReadPaths = append(p.ReadPaths, o.ReadPaths...)
		if o.ScratchRoot != "" {
			p.ScratchRoot = o.ScratchRoot
		}
	}
	if err := p.Limits.validate(); err != nil {
		return Profile{}, err
	}
	if p.UserNS && p.UID == 0 {
		p.UID, p.GID = 65534, 65534
	}
	return p, nil
}
