package isolation

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// A sealed sandbox is a root filesystem of its own: an empty tmpfs holding
// only what the plugin needs (its binary, the binary's interpreter and
// libraries, the profile's ReadPaths), its scratch and socket dirs, a few
// device nodes and a /proc of its own PID namespace. Nothing else of the
// host (sockets, config files, other tenants' directories, the host's mount
// table) is even visible.
//
// The host plans it: it resolves every path (replicating symlinks on the
// way, so paths inside read as they do outside), opens each mount source
// itself (as root: the sandbox user needs no access to the directories on
// the way) and hands the descriptors to the entry point, which builds the
// tree in its own mount namespace and pivots into it.

// sealSpec is the plan the entry point carries out.
type sealSpec struct {
	Links  []sealLink  `json:"links,omitempty"`
	Mounts []sealMount `json:"mounts"`
}

type sealLink struct {
	Path   string `json:"path"`
	Target string `json:"target"`
}

type sealMount struct {
	Path  string `json:"path"`
	FD    int    `json:"fd"`
	Dir   bool   `json:"dir,omitempty"`
	Write bool   `json:"write,omitempty"`
	Dev   bool   `json:"dev,omitempty"` // a device node: keeps dev, needs no read-only

	verified bool // the checksummed binary: mounted last, over any read path holding it
}

// sealedDevices are the device nodes a sealed sandbox gets.
var sealedDevices = []string{"/dev/null", "/dev/zero", "/dev/urandom"}

// sealedExtras are host files a sealed sandbox gets when they exist: time
// zone data only. Everything else is a ReadPath.
var sealedExtras = []string{"/etc/localtime"}

// maxSymlinks bounds symlink chains while planning (as the kernel's 40).
const maxSymlinks = 40

// sealPlanner collects what the sealed root holds. files are the
// descriptors it opened; the caller passes them on as ExtraFiles starting
// at firstFD and closes them after the start.
type sealPlanner struct {
	firstFD int
	files   []*os.File
	links   map[string]string
	mounts  map[string]*sealMount
	hops    int
}

func newSealPlanner(firstFD int) *sealPlanner {
	return &sealPlanner{firstFD: firstFD, links: map[string]string{}, mounts: map[string]*sealMount{}}
}

func (s *sealPlanner) close() {
	for _, f := range s.files {
		_ = f.Close()
	}
	s.files = nil
}

// include adds path (following and replicating symlinks) as a mount. With
// fd >= 0 the final file is mounted from that descriptor (the verified
// plugin binary) instead of being opened here. optional paths that do not
// exist are left out.
func (s *sealPlanner) include(path string, m sealMount, fd int, optional bool) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("%w: sealed root: %q is not an absolute path", ErrSandboxSetup, path)
	}
	real, err := s.resolve(filepath.Clean(path))
	if err != nil {
		if optional && errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("%w: sealed root: %s: %v", ErrSandboxSetup, path, err)
	}
	if old, ok := s.mounts[real]; ok {
		old.Write = old.Write || m.Write
		return nil
	}
	var tree int

	if fd < 0 {
		tree, err = unix.OpenTree(unix.AT_FDCWD, real, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE|unix.AT_SYMLINK_NOFOLLOW)
	} else {
		tree, err = unix.OpenTree(fd, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH)
	}
	if err != nil {
		if optional && errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("%w: sealed root: clone mount of %s: %v", ErrSandboxSetup, real, err)
	}
	f := os.NewFile(uintptr(tree), real)
	var st unix.Stat_t
	if err := unix.Fstat(tree, &st); err != nil {
		_ = f.Close()
		return fmt.Errorf("%w: sealed root: %s: %v", ErrSandboxSetup, real, err)
	}
	m.Dir = st.Mode&unix.S_IFMT == unix.S_IFDIR
	// Attributes are set here, by the host: the tenant can never clear
	// them (it has no capability, and seccomp denies mount calls).
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_NOSUID}
	if !m.Dev {
		attr.Attr_set |= unix.MOUNT_ATTR_NODEV
	}
	if !m.Write && !m.Dev {
		attr.Attr_set |= unix.MOUNT_ATTR_RDONLY
	}
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr); err != nil {
		_ = f.Close()
		return fmt.Errorf("%w: sealed root: attributes of %s: %v", ErrSandboxSetup, real, err)
	}
	m.Path, m.FD, m.verified = real, s.firstFD+len(s.files), fd >= 0
	s.files = append(s.files, f)
	s.mounts[real] = &m
	return nil
}

// resolve walks path component by component; each symlink on the way is
// recorded (to be recreated inside) and followed. It returns the path with
// no symlink left, which is where the mount goes.
func (s *sealPlanner) resolve(path string) (string, error) {
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	cur := "/"
	for i, p := range parts {
		if p == "" {
			continue
		}
		next := filepath.Join(cur, p)
		st, err := os.Lstat(next)
		if err != nil {
			return "", err
		}
		if st.Mode()&os.ModeSymlink == 0 {
			cur = next
			continue
		}
		if s.hops++; s.hops > maxSymlinks {
			return "", fmt.Errorf("too many symlinks")
		}
		target, err := os.Readlink(next)
		if err != nil {
			return "", err
		}
		s.links[next] = target
		if !filepath.IsAbs(target) {
			target = filepath.Join(cur, target)
		}
		rest := append([]string{target}, parts[i+1:]...)
		return s.resolve(filepath.Clean(filepath.Join(rest...)))
	}
	return cur, nil
}

// spec orders the plan: links and files first, then directories from the
// outermost in (a directory mounted later over files placed earlier holds
// them too, as it does on the host), and the verified binary last, so that
// the path exec'd is the checksummed file even inside a read path.
func (s *sealPlanner) spec() *sealSpec {
	out := &sealSpec{}
	for p, t := range s.links {
		out.Links = append(out.Links, sealLink{Path: p, Target: t})
	}
	sort.Slice(out.Links, func(i, j int) bool { return out.Links[i].Path < out.Links[j].Path })
	for _, m := range s.mounts {
		out.Mounts = append(out.Mounts, *m)
	}
	sort.Slice(out.Mounts, func(i, j int) bool {
		a, b := out.Mounts[i], out.Mounts[j]
		if a.verified != b.verified {
			return b.verified
		}
		if a.Dir != b.Dir {
			return !a.Dir
		}
		if a.Dir && strings.Count(a.Path, "/") != strings.Count(b.Path, "/") {
			return strings.Count(a.Path, "/") < strings.Count(b.Path, "/")
		}
		return a.Path < b.Path
	})
	return out
}

// sealMountPoint is where the entry point builds the new root before
// pivoting into it; inside its private mount namespace, so nothing of it
// shows on the host.
const sealMountPoint = "/tmp"

// applySeal runs in the entry point, in its own user and mount namespace
// (as root of the user namespace, before capabilities are dropped): build
// the tree on a tmpfs, mount a fresh /proc, pivot_root into it, detach the
// host's root and make the new root read-only.
func applySeal(s *sealSpec) error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	root := sealMountPoint
	if err := unix.Mount("rspp-sandbox", root, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755,size=1m,nr_inodes=8192"); err != nil {
		return fmt.Errorf("tmpfs root on %s: %w", root, err)
	}
	in := func(p string) string { return filepath.Join(root, p) }
	for _, l := range s.Links {
		if err := os.MkdirAll(filepath.Dir(in(l.Path)), 0o755); err != nil {
			return fmt.Errorf("link %s: %w", l.Path, err)
		}
		if err := os.Symlink(l.Target, in(l.Path)); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("link %s: %w", l.Path, err)
		}
	}
	for _, m := range s.Mounts {
		if err := sealOne(in(m.Path), m); err != nil {
			return fmt.Errorf("mount %s: %w", m.Path, err)
		}
	}
	// /proc before the host's root is detached: the kernel lets a user
	// namespace mount proc only while a full proc is visible to it.
	if err := os.MkdirAll(in("/proc"), 0o555); err != nil {
		return err
	}
	if err := unix.Mount("proc", in("/proc"), "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount /proc: %w", err)
	}
	if err := os.MkdirAll(in("/dev"), 0o755); err == nil {
		_ = os.Symlink("/proc/self/fd", in("/dev/fd"))
	}
	oldRoot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(oldRoot)
	if err := unix.Chdir(root); err != nil {
		return err
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Fchdir(oldRoot); err != nil {
		return err
	}
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("old root: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach old root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return err
	}
	if err := unix.MountSetattr(unix.AT_FDCWD, "/", 0, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}); err != nil {
		return fmt.Errorf("read-only root: %w", err)
	}
	return nil
}

func sealOne(target string, m sealMount) error {
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	if _, err := os.Lstat(target); errors.Is(err, os.ErrNotExist) {
		if m.Dir {
			err = os.Mkdir(target, 0o755)
		} else {
			var f *os.File
			if f, err = os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o644); err == nil {
				err = f.Close()
			}
		}
		if err != nil {
			return err
		}
	}
	if err := unix.MoveMount(m.FD, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("attach: %w", err)
	}
	return nil
}
