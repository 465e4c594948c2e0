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
	if err := os.MkdirAll(run, 0o700); err != nil {
		return nil, nil, fmt.Errorf("state dir %s: %w", run, err)
	}
	return &StateDir{Root: root, Run: run}, swept, nil
}

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
