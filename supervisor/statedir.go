package supervisor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// StateDir is the runtime's scratch area: one run-<pid> directory per live
// runtime process holding its plugins' socket dirs. A runtime that was
// SIGKILLed leaves its run dir behind; the next start sweeps run dirs whose
// pid is gone.
type StateDir struct {
	Root string // e.g. $TMPDIR/rspp
	Run  string // Root/run-<pid>
}

// OpenStateDir creates root and this process's run dir, and sweeps the run
// dirs of dead runtimes. It returns what it swept.
func OpenStateDir(root string) (*StateDir, []string, error) {
	if root == "" {
		root = filepath.Join(os.TempDir(), "rspp")
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, nil, fmt.Errorf("state dir %s: %w", root, err)
	}
	swept, err := sweepRuns(root)
	if err != nil {
		return nil, nil, err
	}
	run := filepath.Join(root, "run-"+strconv.Itoa(os.Getpid()))
	// go-plugin puts sockets at run/plugin-dirNNNNNNNNNN/pluginNNNNNNNNNN;
	// a unix socket path must fit in 108 bytes (sun_path).
	if n := len(run) + len("/plugin-dir0123456789/plugin0123456789"); n > maxSocketPath {
		return nil, nil, fmt.Errorf("state dir %s: too long for unix socket paths (%d bytes with the socket name, max %d): choose a shorter runtime.state_dir", root, n, maxSocketPath)
	}
	// 0711: sandboxed plugins run as an unprivileged uid and must traverse
	// this dir to reach their own socket dir (which is theirs alone);
	// nobody but root can list it.
	if err := os.MkdirAll(run, 0o711); err != nil {
		return nil, nil, fmt.Errorf("state dir %s: %w", run, err)
	}
	return &StateDir{Root: root, Run: run}, swept, nil
}

// Scratch is the root of this run's per-instance scratch dirs: inside the
// run dir, so a dead run's scratch dirs (tenant data, providers' temporary
// files) are swept with it.
func (d *StateDir) Scratch() string { return filepath.Join(d.Run, "scratch") }

// maxSocketPath is sun_path's size less its terminating NUL.
const maxSocketPath = 107

// Close removes this run's directory.
func (d *StateDir) Close() error { return os.RemoveAll(d.Run) }

func sweepRuns(root string) ([]string, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("state dir %s: %w", root, err)
	}
	var swept []string
	for _, e := range entries {
		pidStr, ok := strings.CutPrefix(e.Name(), "run-")
		if !ok {
			continue
		}
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid() || alive(pid) {
			continue
		}
		p := filepath.Join(root, e.Name())
		// Its timeline first: the turns it had open end there (seal.go).
		if _, err := sealDeadRun(p, pid); err != nil {
			return nil, fmt.Errorf("state dir %s: dead run %d: %w", root, pid, err)
		}
		if err := os.RemoveAll(p); err == nil {
			swept = append(swept, p)
		}
	}
	return swept, nil
}

// alive says whether pid exists (EPERM means it exists but is not ours).
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// ReachableByOthers reports the first directory on the way to the run dir
// that a non-root uid cannot traverse (no o+x), or "" when all can: a
// tenant-profile plugin runs as such a uid and must reach its socket dir.
func (d *StateDir) ReachableByOthers() string {
	for p := d.Run; ; p = filepath.Dir(p) {
		st, err := os.Stat(p)
		if err != nil || st.Mode().Perm()&0o001 == 0 {
			return p
		}
		if p == filepath.Dir(p) {
			return ""
		}
	}
}
