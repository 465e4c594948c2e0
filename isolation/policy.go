package isolation

import (
	"fmt"
	"syscall"
	"unsafe"

	seccomp "github.com/elastic/go-seccomp-bpf"
	"golang.org/x/sys/unix"
)

// Landlock is driven with raw system calls from golang.org/x/sys/unix:
// go-landlock's syscall package pulls in psx, whose cgo variant wraps
// pthread_create and hangs in a new PID namespace; this package only ever
// restricts the one thread that execs, so it needs none of that.

// fsRights are the landlock filesystem rights of an ABI version: v1 has
// bits 0..12, v2 adds REFER, v3 TRUNCATE, v5 IOCTL_DEV.
func fsRights(abi int) uint64 {
	r := uint64(1<<13 - 1)
	if abi >= 2 {
		r |= unix.LANDLOCK_ACCESS_FS_REFER
	}
	if abi >= 3 {
		r |= unix.LANDLOCK_ACCESS_FS_TRUNCATE
	}
	if abi >= 5 {
		r |= unix.LANDLOCK_ACCESS_FS_IOCTL_DEV
	}
	return r
}

const fsReadRights = unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_READ_DIR

// fileRights are the rights that apply to a file (not a directory).
const fileRights = unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_WRITE_FILE |
	unix.LANDLOCK_ACCESS_FS_TRUNCATE | unix.LANDLOCK_ACCESS_FS_IOCTL_DEV

// LandlockABI is the kernel's landlock ABI version (0: unavailable).
func LandlockABI() int {
	v, _, e := syscall.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	if e != 0 {
		return 0
	}
	return int(v)
}

// applyLandlock restricts the calling thread (and what it execs). Paths
// that do not exist or cannot be opened are left out: they stay denied.
func applyLandlock(p *fsPolicy, socketFD int) error {
	abi := LandlockABI()
	if abi < 1 {
		return fmt.Errorf("%w: landlock is not enabled in this kernel", ErrUnsupported)
	}
	handled := fsRights(abi)
	attr := unix.LandlockRulesetAttr{Handled_access_fs: handled}
	if abi >= 4 {
		attr.Handled_access_net = unix.LANDLOCK_ACCESS_NET_BIND_TCP | unix.LANDLOCK_ACCESS_NET_CONNECT_TCP
	}
	if abi >= 6 {
		attr.Scoped = unix.LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | unix.LANDLOCK_SCOPE_SIGNAL
	}
	// Pass only the fields every ABI up to 9 knows (the quiet masks are
	// ABI 10); the kernel reads the struct by the size given.
	size := unsafe.Offsetof(attr.Quiet_access_fs)
	if abi < 6 {
		size = unsafe.Offsetof(attr.Scoped)
	}
	if abi < 4 {
		size = unsafe.Offsetof(attr.Handled_access_net)
	}
	r, _, e := syscall.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, uintptr(unsafe.Pointer(&attr)), size, 0)
	if e != 0 {
		return fmt.Errorf("create ruleset: %w", e)
	}
	fd := int(r)
	defer unix.Close(fd)
	add := func(pfd int, rights uint64) error {
		var st unix.Stat_t
		if err := unix.Fstat(pfd, &st); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			rights &= fileRights
		}
		rule := unix.LandlockPathBeneathAttr{Allowed_access: rights & handled, Parent_fd: int32(pfd)}
		_, _, e := syscall.Syscall6(unix.SYS_LANDLOCK_ADD_RULE, uintptr(fd), unix.LANDLOCK_RULE_PATH_BENEATH,
			uintptr(unsafe.Pointer(&rule)), 0, 0, 0)
		if e != 0 {
			return e
		}
		return nil
	}
	rule := func(path string, rights uint64) error {
		pfd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil // absent or unreachable: stays denied
		}
		defer unix.Close(pfd)
		if err := add(pfd, rights); err != nil {
			return fmt.Errorf("rule %s: %w", path, err)
		}
		return nil
	}
	for _, path := range p.Read {
		if err := rule(path, fsReadRights); err != nil {
			return err
		}
	}
	for _, path := range p.Write {
		if err := rule(path, handled); err != nil {
			return err
		}
	}
	if socketFD > 0 {
		if err := add(socketFD, handled); err != nil {
			return fmt.Errorf("rule socket dir: %w", err)
		}
	}
	// The plugin binary itself, through the descriptor the host verified
	// (its path may be unreachable for the sandbox user).
	if err := add(binaryFD, unix.LANDLOCK_ACCESS_FS_EXECUTE|unix.LANDLOCK_ACCESS_FS_READ_FILE); err != nil {
		return fmt.Errorf("rule plugin binary: %w", err)
	}
	if _, _, e := syscall.Syscall(unix.SYS_LANDLOCK_RESTRICT_SELF, uintptr(fd), 0, 0); e != 0 {
		return fmt.Errorf("restrict self: %w", e)
	}
	return nil
}

// deniedSyscalls fail with EPERM in the tenant sandbox: debugging other
// processes, changing mounts or namespaces, loading kernel code (modules,
// bpf), perf events, userfaultfd, keyrings, clocks, and io_uring (which
// would bypass this filter).
var deniedSyscalls = []string{
	"ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "kcmp",
	"mount", "umount2", "pivot_root", "chroot", "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
	"unshare", "setns",
	"kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "bpf", "perf_event_open",
	"keyctl", "add_key", "request_key",
	"reboot", "swapon", "swapoff", "acct", "quotactl", "syslog", "vhangup", "iopl", "ioperm",
	"settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
	"userfaultfd", "open_by_handle_at", "name_to_handle_at", "fanotify_init",
	"io_uring_setup", "io_uring_enter", "io_uring_register",
}

func seccompPolicy() seccomp.Policy {
	// socket(2)'s type argument carries SOCK_CLOEXEC and SOCK_NONBLOCK;
	// the filter's BitsSet means "any bit", so match SOCK_RAW exactly with
	// each flag combination.
	deny := []seccomp.NameWithConditions{
		{Name: "socket", Conditions: seccomp.ArgumentConditions{{Argument: 0, Operation: seccomp.Equal, Value: unix.AF_PACKET}}},
	}
	for _, flags := range []uint64{0, unix.SOCK_CLOEXEC, unix.SOCK_NONBLOCK, unix.SOCK_CLOEXEC | unix.SOCK_NONBLOCK} {
		deny = append(deny, seccomp.NameWithConditions{Name: "socket", Conditions: seccomp.ArgumentConditions{
			{Argument: 1, Operation: seccomp.Equal, Value: unix.SOCK_RAW | flags}}})
	}
	// clone with any namespace flag: new namespaces are how a tenant would
	// get capabilities back (a user namespace) and see past its sandbox.
	deny = append(deny, seccomp.NameWithConditions{Name: "clone", Conditions: seccomp.ArgumentConditions{
		{Argument: 0, Operation: seccomp.BitsSet, Value: cloneNamespaceFlags}}})
	return seccomp.Policy{
		DefaultAction: seccomp.ActionAllow,
		Syscalls: []seccomp.SyscallGroup{{
			Names:              deniedSyscalls,
			Action:             seccomp.ActionErrno,
			NamesWithCondtions: deny,
		}, {
			// clone3 passes its flags in memory, which seccomp cannot read:
			// ENOSYS makes libc and the Go runtime fall back to clone, whose
			// flags the rule above checks.
			Names:  []string{"clone3"},
			Action: seccomp.ActionErrno | seccomp.Action(unix.ENOSYS),
		}},
	}
}

// cloneNamespaceFlags are the clone(2) flags that create a namespace
// (CLONE_NEWTIME shares its bit with clone's exit signal: only unshare,
// denied outright, and clone3 take it).
const cloneNamespaceFlags = unix.CLONE_NEWUSER | unix.CLONE_NEWNS | unix.CLONE_NEWNET | unix.CLONE_NEWPID |
	unix.CLONE_NEWIPC | unix.CLONE_NEWUTS | unix.CLONE_NEWCGROUP

// applySeccomp loads the filter on the calling thread only (no TSYNC): it
// is the thread that execs, and the filter survives execve.
func applySeccomp() error {
	if !seccomp.Supported() {
		return fmt.Errorf("%w: seccomp", ErrUnsupported)
	}
	return seccomp.LoadFilter(seccomp.Filter{NoNewPrivs: true, Policy: seccompPolicy()})
}
