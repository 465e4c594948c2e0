package isolation

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"
	"golang.org/x/sys/unix"
)

// Target is the plugin to start: what a plain go-plugin ClientConfig.Cmd
// and SecureConfig would have said.
type Target struct {
	Binary string
	Args   []string
	Env    []string // the plugin's own variables (kept even with SkipHostEnv)
	// Secure, if set, is checked against the plugin binary (not the entry
	// point) on the very descriptor the entry point execs, so the file
	// cannot be swapped between check and exec. Leave go-plugin's own
	// ClientConfig.SecureConfig nil: with a RunnerFunc it would hash "".
	Secure *plugin.SecureConfig
}

// RunnerFunc returns a go-plugin ClientConfig.RunnerFunc that starts t
// through the sandbox entry point with profile p, placed in env before any
// of its code runs. env may be nil for an unconfined start (benchmarks).
func (p Profile) RunnerFunc(env *Envelope, t Target) func(hclog.Logger, *exec.Cmd, string) (runner.Runner, error) {
	return func(l hclog.Logger, cmd *exec.Cmd, socketDir string) (runner.Runner, error) {
		return p.newRunner(l, env, t, cmd, socketDir)
	}
}

// pluginEnv is what the plugin gets: go-plugin's handshake variables, the
// target's own, and (unless SkipHostEnv) the host's.
func (p Profile) pluginEnv(cmd *exec.Cmd, t Target, scratch string) []string {
	// The runtime's environment as of now: a tenant plugin gets none of it.
	hostEnv := map[string]bool{}
	for _, kv := range os.Environ() {
		hostEnv[kv] = true
	}
	own := map[string]bool{}
	for _, kv := range t.Env {
		own[kv] = true
	}
	var env []string
	for _, kv := range cmd.Env {
		if p.SkipHostEnv && hostEnv[kv] && !own[kv] && !strings.HasPrefix(kv, "PLUGIN_") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, t.Env...)
	if scratch != "" {
		env = append(env, "TMPDIR="+scratch, "HOME="+scratch)
	}
	return append(env, entryEnv+"=1")
}

type sandboxRunner struct {
	logger    hclog.Logger
	profile   Profile
	env       *Envelope
	target    Target
	gpCmd     *exec.Cmd // go-plugin's spec: environment
	socketDir string

	cmd            *exec.Cmd
	stdout, stderr io.ReadCloser
	scratch        string
	pid            int

	waitOnce sync.Once
	waitErr  error
}

func (p Profile) newRunner(l hclog.Logger, env *Envelope, t Target, gpCmd *exec.Cmd, socketDir string) (*sandboxRunner, error) {
	if t.Binary == "" {
		return nil, errors.New("isolation: no plugin binary")
	}
	entry := p.EntryPath
	if entry == "" {
		var err error
		if entry, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("isolation: sandbox entry point: %w", err)
		}
	}
	r := &sandboxRunner{logger: l, profile: p, env: env, target: t, gpCmd: gpCmd, socketDir: socketDir}
	r.cmd = exec.Command(entry)
	r.cmd.Args = []string{"rspp-sandbox"}
	var err error
	if r.stdout, err = r.cmd.StdoutPipe(); err != nil {
		return nil, err
	}
	if r.stderr, err = r.cmd.StderrPipe(); err != nil {
		return nil, err
	}
	return r, nil
}

// openVerified opens the plugin binary and checks it against Secure on
// that descriptor.
func (r *sandboxRunner) openVerified() (*os.File, error) {
	f, err := os.Open(r.target.Binary)
	if err != nil {
		return nil, fmt.Errorf("isolation: plugin binary: %w", err)
	}
	if s := r.target.Secure; s != nil {
		if len(s.Checksum) == 0 || s.Hash == nil {
			_ = f.Close()
			return nil, fmt.Errorf("%w: SecureConfig needs Checksum and Hash", ErrChecksum)
		}
		s.Hash.Reset() // go-plugin never resets it: a reused config would never match again
		if _, err := io.Copy(s.Hash, io.NewSectionReader(f, 0, 1<<62)); err != nil {
			_ = f.Close()
			return nil, err
		}
		if subtle.ConstantTimeCompare(s.Hash.Sum(nil), s.Checksum) != 1 {
			_ = f.Close()
			return nil, fmt.Errorf("%w: %s", ErrChecksum, r.target.Binary)
		}
	}
	return f, nil
}

func (r *sandboxRunner) Start(ctx context.Context) error {
	p := r.profile
	bin, err := r.openVerified()
	if err != nil {
		return err
	}
	defer bin.Close()
	uid, gid := 0, 0
	if p.UserNS {
		uid, gid = p.UID, p.GID
	}
	if p.ScratchRoot != "" {
		name := "unconfined-" + strconv.Itoa(os.Getpid())
		if r.env != nil {
			name = r.env.Name()
		}
		if err := os.MkdirAll(p.ScratchRoot, 0o711); err != nil {
			return fmt.Errorf("isolation: scratch root: %w", err)
		}
		r.scratch = filepath.Join(p.ScratchRoot, name)
		if err := os.Mkdir(r.scratch, 0o700); err != nil {
			return fmt.Errorf("isolation: scratch dir: %w", err)
		}
		if err := os.Chown(r.scratch, uid, gid); err != nil {
			return fmt.Errorf("isolation: scratch dir: %w", err)
		}
	}
	if p.UserNS && r.socketDir != "" {
		// go-plugin made it 0700 root; the plugin must create its socket there.
		if err := os.Chown(r.socketDir, uid, gid); err != nil {
			return fmt.Errorf("isolation: socket dir: %w", err)
		}
	}
	spec := entrySpec{
		Argv:     append([]string{r.target.Binary}, r.target.Args...),
		Env:      p.pluginEnv(r.gpCmd, r.target, r.scratch),
		Dir:      r.scratch,
		DropCaps: p.DropCaps,
		Seccomp:  p.Seccomp,
		Trace:    os.Getenv("RSPP_SANDBOX_TRACE") == "1",
	}
	spec.Rlimits = append(spec.Rlimits, rlimit{Resource: unix.RLIMIT_CORE})
	if p.NoFile > 0 {
		spec.Rlimits = append(spec.Rlimits, rlimit{Resource: unix.RLIMIT_NOFILE, Cur: p.NoFile, Max: p.NoFile})
	}
	if p.FileSize > 0 {
		spec.Rlimits = append(spec.Rlimits, rlimit{Resource: unix.RLIMIT_FSIZE, Cur: p.FileSize, Max: p.FileSize})
	}
	if p.Namespaces {
		spec.Hostname = "rspp-sandbox"
	}
	if p.Landlock {
		fsp := &fsPolicy{Read: p.ReadPaths, Write: []string{"/dev/null"}}
		for _, d := range []string{r.scratch, r.socketDir} {
			if d != "" {
				fsp.Write = append(fsp.Write, d)
			}
		}
		spec.Landlock = fsp
	}
	raw, err := json.Marshal(spec)
	if err != nil {
		return err
	}

	gateR, gateW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer gateW.Close()
	// The spec travels through the gate pipe, not the environment, so the
	// plugin's environment holds nothing of it.
	r.cmd.Env = spec.Env
	r.cmd.ExtraFiles = []*os.File{gateR, bin} // fds 3 and 4
	attr := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if p.Namespaces {
		attr.Cloneflags |= syscall.CLONE_NEWNET | syscall.CLONE_NEWPID | syscall.CLONE_NEWNS | syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS
	}
	if p.UserNS {
		attr.Cloneflags |= syscall.CLONE_NEWUSER
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: uid, Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: gid, Size: 1}}
		attr.GidMappingsEnableSetgroups = false
		attr.Credential = &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: true}
	}
	r.cmd.SysProcAttr = attr
	err = r.cmd.Start()
	_ = gateR.Close()
	if err != nil {
		r.cleanup()
		return fmt.Errorf("isolation: start sandbox entry %s: %w", r.cmd.Path, err)
	}
	r.pid = r.cmd.Process.Pid
	if r.env != nil {
		if err := r.env.Add(r.pid); err != nil {
			// Closing the gate with no spec makes the entry exit untouched.
			_ = gateW.Close()
			_ = r.Kill(ctx)
			_ = r.Wait(ctx)
			return err
		}
	}
	if _, err := gateW.Write(raw); err != nil {
		_ = r.Kill(ctx)
		_ = r.Wait(ctx)
		return fmt.Errorf("isolation: release sandbox entry: %w", err)
	}
	return gateW.Close()
}

// Wait waits for the plugin to exit. If its envelope saw an OOM kill or a
// pids-limit hit, the error is the *LimitError (wrapping the exit error),
// so the exit is reported as that limit and not as a generic crash.
func (r *sandboxRunner) Wait(context.Context) error {
	r.waitOnce.Do(func() {
		err := r.cmd.Wait()
		if r.env != nil {
			if lerr := r.env.Failure(); lerr != nil {
				if err == nil {
					err = lerr
				} else {
					err = fmt.Errorf("%w (%w)", lerr, err)
				}
			}
		}
		r.waitErr = err
		r.cleanup()
	})
	return r.waitErr
}

func (r *sandboxRunner) cleanup() {
	if r.scratch != "" {
		if err := os.RemoveAll(r.scratch); err != nil {
			r.logger.Warn("removing scratch dir", "dir", r.scratch, "error", err)
		}
	}
}

// Kill kills the plugin's process group and everything else in its
// envelope (children that left the group). Safe to call more than once.
func (r *sandboxRunner) Kill(context.Context) error {
	if r.pid == 0 {
		return nil
	}
	err := syscall.Kill(-r.pid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		err = nil
	}
	if r.env != nil {
		err = errors.Join(err, r.env.Kill())
	}
	return err
}

func (r *sandboxRunner) Stdout() io.ReadCloser { return r.stdout }
func (r *sandboxRunner) Stderr() io.ReadCloser { return r.stderr }

// Name is the plugin binary (what logs should name), not the entry point.
func (r *sandboxRunner) Name() string { return r.target.Binary }

func (r *sandboxRunner) ID() string {
	if r.pid == 0 {
		return ""
	}
	return strconv.Itoa(r.pid)
}

func (r *sandboxRunner) Diagnose(context.Context) string {
	return fmt.Sprintf("plugin %s started through sandbox entry %s (profile %q); lines starting with rspp-sandbox: on its stderr say which sandbox step failed",
		r.target.Binary, r.cmd.Path, r.profile.Name)
}

func (r *sandboxRunner) PluginToHost(n, a string) (string, string, error) { return n, a, nil }
func (r *sandboxRunner) HostToPlugin(n, a string) (string, string, error) { return n, a, nil }
