package externalnode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"sync"
	"syscall"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin/runner"
)

// RunnerFunc is go-plugin's hook for starting the plugin process; isolation
// supplies one that starts the plugin inside a sandbox. cmd carries the
// environment go-plugin prepared (handshake cookie, socket dir, mTLS cert).
type RunnerFunc func(l hclog.Logger, cmd *exec.Cmd, socketDir string) (runner.Runner, error)

// ProcRunner starts the plugin binary directly: its own process group (so a
// kill takes its children too) and SIGKILL when the runtime dies.
func ProcRunner(binary string, args []string, extraEnv []string) RunnerFunc {
	return func(l hclog.Logger, cmd *exec.Cmd, _ string) (runner.Runner, error) {
		c := exec.Command(binary, args...)
		c.Env = append(append([]string(nil), cmd.Env...), extraEnv...)
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		stdout, err := c.StdoutPipe()
		if err != nil {
			return nil, err
		}
		stderr, err := c.StderrPipe()
		if err != nil {
			return nil, err
		}
		return &procRunner{cmd: c, stdout: stdout, stderr: stderr}, nil
	}
}

// procRunner is a plain child process.
type procRunner struct {
	cmd            *exec.Cmd
	stdout, stderr io.ReadCloser
}

func (r *procRunner) Start(context.Context) error     { return r.cmd.Start() }
func (r *procRunner) Wait(context.Context) error      { return r.cmd.Wait() }
func (r *procRunner) Diagnose(context.Context) string { return "" }
func (r *procRunner) Stdout() io.ReadCloser           { return r.stdout }
func (r *procRunner) Stderr() io.ReadCloser           { return r.stderr }
func (r *procRunner) Name() string                    { return r.cmd.Path }
func (r *procRunner) ID() string {
	if r.cmd.Process == nil {
		return ""
	}
	return strconv.Itoa(r.cmd.Process.Pid)
}

// Kill kills the whole process group.
func (r *procRunner) Kill(context.Context) error {
	if r.cmd.Process == nil {
		return nil
	}
	err := syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

func (r *procRunner) PluginToHost(n, a string) (string, string, error) { return n, a, nil }
func (r *procRunner) HostToPlugin(n, a string) (string, string, error) { return n, a, nil }

// watchRunner wraps any runner: it forks on the spawn thread and records how
// the process ended, so the Instance can classify a crash.
type watchRunner struct {
	runner.Runner
	exited chan struct{}
	once   sync.Once
	err    error // from Wait; set before exited is closed
}

func newWatchRunner(inner runner.Runner) *watchRunner {
	return &watchRunner{Runner: inner, exited: make(chan struct{})}
}

func (w *watchRunner) Start(ctx context.Context) error {
	return OnSpawnThread(func() error { return w.Runner.Start(ctx) })
}

func (w *watchRunner) Wait(ctx context.Context) error {
	err := w.Runner.Wait(ctx)
	w.once.Do(func() {
		w.err = err
		close(w.exited)
	})
	return err
}

// pid is the plugin's process id, 0 before start.
func (w *watchRunner) pid() int {
	p, _ := strconv.Atoi(w.ID())
	return p
}

// exitError describes how the process ended (call after exited is closed).
func (w *watchRunner) exitError(cause error) *ExitError {
	e := &ExitError{Pid: w.pid(), Code: -1, Cause: cause}
	var ee *exec.ExitError
	if errors.As(w.err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			e.Signal = ws.Signal().String()
		} else {
			e.Code = ee.ExitCode()
		}
	} else if w.err == nil {
		e.Code = 0
	} else if e.Cause == nil {
		e.Cause = w.err
	}
	return e
}

func (w *watchRunner) String() string { return fmt.Sprintf("plugin %s pid %d", w.Name(), w.pid()) }

// Aliases keep the ClientConfig literal in client.go readable.
type (
	execCmd = exec.Cmd
	runnerT = runner.Runner
)
