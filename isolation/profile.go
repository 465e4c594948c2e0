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
	UserNS bool
	// UID, GID: the host ids the plugin runs as (mapped to root of its user
	// namespace with UserNS). 0: when the runtime is root, one uid (and a
	// group of the same number) per instance from UIDs, unless RunAsRoot.
	UID, GID int
	UIDs     UIDRange // zero: DefaultUIDRange
	// RunAsRoot keeps the runtime's uid (root) for the plugin: the
	// provider config's `user: root`. Only for profiles without UserNS.
	RunAsRoot bool

	// Seal: the plugin gets a root filesystem of its own (an empty tmpfs
	// holding its binary, interpreter and libraries, ReadPaths, its scratch
	// and socket dirs, /dev/null, /dev/zero, /dev/urandom and a /proc of
	// its PID namespace): no host file or socket is even visible. Needs
	// Namespaces and UserNS. ReadPaths are bind-mounted read-only.
	Seal bool

	// Landlock: the filesystem is read-only, and only ReadPaths (plus the
	// plugin binary; with Seal, everything in the sealed root) are readable
	// at all; the instance's scratch dir and
	// go-plugin's socket dir are the only writable places. TCP bind and
	// connect are denied, and signals cannot leave the sandbox.
	Landlock  bool
	ReadPaths []string
	// Seccomp: deny ptrace, mount, module, bpf, perf, userfaultfd,
	// namespace (unshare, setns, clone with CLONE_NEW* flags; clone3 is
	// ENOSYS so libc falls back to clone), keyring, io_uring and raw/packet
	// socket system calls.
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
	// MaybeSandboxMain first (default: this executable). The host opens it
	// and the child execs that descriptor, so the directories on its path
	// need not be reachable by UID; the file must be executable by UID.
	EntryPath string
}

// DefaultReadPaths are what a dynamically or statically linked plugin
// needs to load and to make TLS and time zone work, for a profile with
// Landlock but without Seal (a sealed root finds what the binary needs
// itself, see ExecNeeds).
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
	RunAsRoot   bool // the provider config's `user: root`
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
			Seal:        true,
			Landlock:    true,
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
		p.RunAsRoot = p.RunAsRoot || o.RunAsRoot
	}
	if err := p.Limits.validate(); err != nil {
		return Profile{}, err
	}
	if p.RunAsRoot && p.UserNS {
		return Profile{}, fmt.Errorf("%w: profile %q runs in a user namespace mapped to an unprivileged uid; user: root is only for profiles without one (trusted)", ErrInvalidProfile, name)
	}
	if p.Seal && (!p.Namespaces || !p.UserNS) {
		return Profile{}, fmt.Errorf("%w: profile %q: Seal needs Namespaces and UserNS", ErrInvalidProfile, name)
	}
	for _, rp := range p.ReadPaths {
		if !filepath.IsAbs(rp) {
			return Profile{}, fmt.Errorf("%w: profile %q: read path %q is not absolute", ErrInvalidProfile, name, rp)
		}
	}
	return p, nil
}
