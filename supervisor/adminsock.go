package supervisor

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// The admin socket's file: where it lives, the lock file that says a live
// runtime serves on it, and the sweep of one a dead run left. The server
// and client are supervisor/admin; Start sweeps, so this stays here.

// AdminSocketPath is where the runtime of cfg listens: runtime.admin_socket
// or <state dir>/admin.sock.
func AdminSocketPath(configured, stateRoot string) string {
	if configured != "" {
		return configured
	}
	if stateRoot == "" {
		stateRoot = filepath.Join(os.TempDir(), "rspp")
	}
	return filepath.Join(stateRoot, "admin.sock")
}

// ErrAdminBusy: a live runtime serves on the admin socket.
var ErrAdminBusy = errors.New("another runtime is serving on it")

// SweepAdminSocket removes the admin socket (and its lock file) a dead
// run left at path; a live runtime's is left alone. It says whether it
// removed one.
func SweepAdminSocket(path string) bool {
	if _, err := os.Lstat(path + ".lock"); err != nil {
		if _, err := os.Lstat(path); err != nil {
			return false // nothing there
		}
	}
	lock, err := LockAdminSocket(path)
	if err != nil {
		return false // held: a live runtime serves there
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		_ = c.Close()
		lock.Release(false)
		return false
	}
	_, statErr := os.Lstat(path)
	if statErr == nil {
		_ = os.Remove(path)
	}
	lock.Release(true)
	return statErr == nil
}

// AdminLock is the held lock file of an admin socket.
type AdminLock struct {
	f    *os.File
	path string
}

// LockAdminSocket takes the lock file of the admin socket at sock without
// waiting.
func LockAdminSocket(sock string) (*AdminLock, error) {
	path := sock + ".lock"
	for range 10 {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("admin socket %s: lock: %w", sock, err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			_ = f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, fmt.Errorf("admin socket %s: %w", sock, ErrAdminBusy)
			}
			return nil, fmt.Errorf("admin socket %s: lock: %w", sock, err)
		}
		// The holder before us may have removed the file after we opened
		// it: the lock is only ours if the path still names this file.
		var held, named unix.Stat_t
		if unix.Fstat(int(f.Fd()), &held) == nil && unix.Stat(path, &named) == nil && held.Ino == named.Ino && held.Dev == named.Dev {
			return &AdminLock{f: f, path: path}, nil
		}
		_ = f.Close()
	}
	return nil, fmt.Errorf("admin socket %s: lock file keeps changing", sock)
}

// Release drops the lock, removing the lock file first if remove.
func (l *AdminLock) Release(remove bool) {
	if remove {
		_ = os.Remove(l.path)
	}
	_ = l.f.Close()
}
