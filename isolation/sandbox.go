package isolation

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The entry point is the runtime binary re-executed with this variable set.
// It is removed from the environment before the plugin is exec'd.
const entryEnv = "RSPP_SANDBOX_ENTRY"

// Descriptors the host hands to the entry point.
const (
	specFD   = 3 // the gate: the spec arrives here, EOF releases the entry
	binaryFD = 4 // the plugin binary, opened and checksummed by the host
	reportFD = 5 // a set-up failure is written here (close-on-exec: EOF on exec)
	entryFD  = 6 // the entry binary itself (the child execs /proc/self/fd/6)
	sealFD   = 7 // first mount source of a sealed root
)

// entrySpec is what the entry point applies before exec'ing the plugin.
type entrySpec struct {
	Argv     []string  `json:"argv"`
	Env      []string  `json:"env"`
	Dir      string    `json:"dir,omitempty"`
	Rlimits  []rlimit  `json:"rlimits,omitempty"`
	Hostname string    `json:"hostname,omitempty"`
	DropCaps bool      `json:"drop_caps,omitempty"`
	Landlock *fsPolicy `json:"landlock,omitempty"`
	Seccomp  bool      `json:"seccomp,omitempty"`
	Seal     *sealSpec `json:"seal,omitempty"`
	SocketFD int       `json:"socket_fd,omitempty"` // the socket dir, kept open for the plugin
	// ScratchFD is the scratch dir, kept open for the plugin: the entry
	// fchdirs into it (Dir is then empty).
	ScratchFD int  `json:"scratch_fd,omitempty"`
	Trace     bool `json:"trace,omitempty"` // write each step to stderr
}

type rlimit struct {
	Resource int    `json:"resource"`
	Cur      uint64 `json:"cur"`
	Max      uint64 `json:"max"`
}

// fsPolicy is the landlock policy: read (and execute) beneath Read, full
// access beneath Write, no TCP, no signals or abstract sockets out of the
// sandbox.
type fsPolicy struct {
	Read  []string `json:"read"`
	Write []string `json:"write"`
}

// MaybeSandboxMain turns the process into the sandbox entry point when it
// was started as one (by RunnerFunc) and never returns in that case. Call it
// first thing in main (and in TestMain of tests that re-run their binary);
// otherwise it returns at once.
//
// The entry point waits until the host has placed it in its envelope (EOF
// on the spec pipe), then, on the one OS thread that will exec, builds and
// pivots into its sealed root (if the profile seals), applies rlimits,
// drops capabilities, sets no_new_privs, landlock and seccomp, and execs
// the verified plugin binary (from the descriptor the host opened, or,
// sealed, from where that descriptor is mounted). A failure is written to
// the report descriptor, which the host puts in the start error.
func MaybeSandboxMain() {
	if os.Getenv(entryEnv) != "1" {
		return
	}
	// Everything below is per-thread state that execve carries over; it
	// must all happen on the thread that calls execve.
	runtime.LockOSThread()
	if err := sandboxMain(); err != nil {
		fmt.Fprintf(os.Stderr, "rspp-sandbox: %v\n", err)
		// The host reads this into the start error: a set-up failure must
		// not need debug logs to be understood.
		report := os.NewFile(reportFD, "report")
		_, _ = fmt.Fprintf(report, "%v", err)
		_ = report.Close()
		os.Exit(125)
	}
	os.Exit(125) // unreachable: sandboxMain execs or fails
}

func sandboxMain() error {
	gate := os.NewFile(specFD, "spec")
	raw, err := io.ReadAll(gate) // blocks until the host released us
	_ = gate.Close()
	if err != nil {
		return fmt.Errorf("read spec: %w", err)
	}
	if len(raw) == 0 {
		return fmt.Errorf("%w: host closed the gate without a spec (placement failed)", ErrSandboxSetup)
	}
	var s entrySpec
	if err := json.Unmarshal(raw, &s); err != nil {
		return fmt.Errorf("decode spec: %w", err)
	}
	step := func(name string, fn func() error) error {
		if err := fn(); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrSandboxSetup, name, err)
		}
		if s.Trace {
			fmt.Fprintf(os.Stderr, "rspp-sandbox: %s ok\n", name)
		}
		return nil
	}
	// No descriptor but stdio and the binary survives exec.
	if err := step("close fds", func() error {
		return unix.CloseRange(binaryFD, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	}); err != nil {
		return err
	}
	if s.SocketFD > 0 {
		if err := step("socket dir descriptor", func() error {
			_, err := unix.FcntlInt(uintptr(s.SocketFD), unix.F_SETFD, 0)
			return err
		}); err != nil {
			return err
		}
	}
	if s.Hostname != "" {
		if err := step("hostname", func() error { return unix.Sethostname([]byte(s.Hostname)) }); err != nil {
			return err
		}
	}
	if s.Seal != nil {
		if err := step("sealed root", func() error { return applySeal(s.Seal) }); err != nil {
			return err
		}
	}
	if s.Dir != "" {
		if err := step("chdir", func() error { return os.Chdir(s.Dir) }); err != nil {
			return err
		}
	}
	if s.ScratchFD > 0 {
		if err := step("scratch dir descriptor", func() error {
			if _, err := unix.FcntlInt(uintptr(s.ScratchFD), unix.F_SETFD, 0); err != nil {
				return err
			}
			return unix.Fchdir(s.ScratchFD)
		}); err != nil {
			return err
		}
	}
	if err := step("rlimits", func() error {
		for _, r := range s.Rlimits {
			if err := unix.Setrlimit(r.Resource, &unix.Rlimit{Cur: r.Cur, Max: r.Max}); err != nil {
				return fmt.Errorf("resource %d: %w", r.Resource, err)
			}
		}
		return nil
	}); err != nil {
		return err
	}
	// no_new_privs first: landlock and seccomp then need no privilege, and
	// nothing exec'd later can gain any (setuid bits, file capabilities).
	if err := step("no_new_privs", func() error { return unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) }); err != nil {
		return err
	}
	if s.Landlock != nil {
		// Before dropping capabilities: the rules are built from paths this
		// process opens, and the sandbox user may need DAC override for none
		// of them, but it costs nothing to open them first.
		if err := step("landlock", func() error { return applyLandlock(s.Landlock, s.SocketFD) }); err != nil {
			return err
		}
	}
	if s.DropCaps {
		if err := step("drop capabilities", dropCaps); err != nil {
			return err
		}
	}
	if s.Seccomp {
		if err := step("seccomp", applySeccomp); err != nil {
			return err
		}
	}
	env := make([]string, 0, len(s.Env))
	for _, kv := range s.Env {
		if !strings.HasPrefix(kv, entryEnv+"=") {
			env = append(env, kv)
		}
	}
	if s.Seal != nil {
		// The binary is mounted at its own path in the sealed root, from the
		// very descriptor the host verified: exec it by that path, so a "#!"
		// script's interpreter finds it too.
		return fmt.Errorf("%w: exec %s: %v", ErrSandboxSetup, s.Argv[0], syscall.Exec(s.Argv[0], s.Argv, env))
	}
	if script, err := isScript(binaryFD); err != nil {
		return fmt.Errorf("%w: read plugin binary: %v", ErrSandboxSetup, err)
	} else if script {
		// For a "#!" script the kernel hands the interpreter /dev/fd/4: it
		// must survive exec (a close-on-exec descriptor makes execveat fail
		// with ENOENT).
		if _, err := unix.FcntlInt(binaryFD, unix.F_SETFD, 0); err != nil {
			return fmt.Errorf("%w: keep script descriptor: %v", ErrSandboxSetup, err)
		}
	}
	return fmt.Errorf("%w: exec %s: %v", ErrSandboxSetup, s.Argv[0], execveat(binaryFD, s.Argv, env))
}

// isScript says whether the file open on fd starts with "#!".
func isScript(fd int) (bool, error) {
	var b [2]byte
	n, err := unix.Pread(fd, b[:], 0)
	if err != nil {
		return false, err
	}
	return n == 2 && b[0] == '#' && b[1] == '!', nil
}

// execveat execs the file open on fd (fexecve): the binary the host
// checksummed, whatever its path points to by now.
func execveat(fd int, argv, env []string) error {
	argvp, err := syscall.SlicePtrFromStrings(argv)
	if err != nil {
		return err
	}
	envp, err := syscall.SlicePtrFromStrings(env)
	if err != nil {
		return err
	}
	empty, _ := syscall.BytePtrFromString("")
	_, _, e := syscall.RawSyscall6(unix.SYS_EXECVEAT, uintptr(fd), uintptr(unsafe.Pointer(empty)),
		uintptr(unsafe.Pointer(&argvp[0])), uintptr(unsafe.Pointer(&envp[0])), unix.AT_EMPTY_PATH, 0)
	return e
}

// dropCaps empties the bounding and ambient sets, locks securebits so that
// exec as uid 0 grants nothing back, and clears the thread's capabilities.
func dropCaps() error {
	last := 40
	if b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			last = n
		}
	}
	for c := 0; c <= last; c++ {
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && err != unix.EINVAL {
			return fmt.Errorf("bounding set cap %d: %w", c, err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("ambient: %w", err)
	}
	// NOROOT, NO_SETUID_FIXUP and NO_CAP_AMBIENT_RAISE, each locked, and
	// KEEP_CAPS locked off: exec as uid 0 grants nothing back.
	const secbits = 1<<0 | 1<<1 | 1<<2 | 1<<3 | 1<<5 | 1<<6 | 1<<7
	if err := unix.Prctl(unix.PR_SET_SECUREBITS, secbits, 0, 0, 0); err != nil {
		return fmt.Errorf("securebits: %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	return unix.Capset(&hdr, &data[0])
}
