package isolation

import (
	"cmp"
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
	"time"

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
	// Report, if set, receives why the sandbox could not be set up (the
	// entry point's own words), for the caller's start error: go-plugin
	// only says the plugin exited.
	Report *SetupReport
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

	entryPath      string
	cmd            *exec.Cmd
	stdout, stderr io.ReadCloser
	scratch        string
	pid            int
	uid            int    // host uid the plugin runs as (0: the runtime's)
	releaseUID     func() // gives a per-instance uid back
	socketViaFD    bool   // the plugin's socket dir is its inherited sealFD
	report         *SetupReport

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
	r := &sandboxRunner{logger: l, profile: p, env: env, target: t, gpCmd: gpCmd, socketDir: socketDir, entryPath: entry, report: t.Report}
	if r.report == nil {
		r.report = &SetupReport{}
	}
	// The child execs the entry through the descriptor the host opened (fd
	// 6 in the child), so the sandbox user needs no access to the
	// directories on its path.
	r.cmd = exec.Command("/proc/self/fd/" + strconv.Itoa(entryFD))
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
	err := r.start(ctx)
	if err != nil {
		r.cleanup()
	}
	return err
}

func (r *sandboxRunner) start(ctx context.Context) error {
	p := r.profile
	if p.Seal && (!p.Namespaces || !p.UserNS) {
		return fmt.Errorf("%w: profile %q: Seal needs Namespaces and UserNS", ErrInvalidProfile, p.Name)
	}
	bin, err := r.openVerified()
	if err != nil {
		return err
	}
	defer bin.Close()
	entry, err := os.Open(r.entryPath)
	if err != nil {
		return fmt.Errorf("isolation: sandbox entry point: %w", err)
	}
	defer entry.Close()
	uid, gid := 0, 0
	if !p.RunAsRoot && os.Geteuid() == 0 {
		if p.UID != 0 {
			uid, gid = p.UID, p.GID
		} else {
			if uid, r.releaseUID, err = uids.acquire(p.UIDs); err != nil {
				return err
			}
			gid = uid
		}
	}
	if p.UserNS && uid == 0 {
		return fmt.Errorf("%w: profile %q maps its user namespace to host root: give it an unprivileged UID", ErrInvalidProfile, p.Name)
	}
	r.uid = uid
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
	if uid != 0 && r.socketDir != "" {
		// go-plugin made it 0700 root; the plugin must create its socket there.
		if err := os.Chown(r.socketDir, uid, gid); err != nil {
			return fmt.Errorf("isolation: socket dir: %w", err)
		}
	}
	spec := entrySpec{
		Argv:     append([]string{r.target.Binary}, r.target.Args...),
		Env:      p.pluginEnv(r.gpCmd, r.target, r.scratch),
		Dir:      cmp.Or(r.scratch, r.gpCmd.Dir), // no scratch: the directory its command names
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
	if p.UserNS && hasEnv(spec.Env, HostUIDEnv) {
		// In its own user namespace the plugin cannot see the host's uid:
		// every uid not mapped into it (the host's among them) shows as
		// the kernel's overflow uid. The plugin's peer check then expects
		// that one, which still refuses its own processes (uid 0 inside).
		spec.Env = replaceEnv(spec.Env, HostUIDEnv, strconv.Itoa(overflowUID()))
	}
	var sealFiles []*os.File
	if p.Seal {
		plan, err := r.planSeal(bin, spec.Env)
		if err != nil {
			return err
		}
		defer plan.close()
		spec.Seal = plan.spec()
		sealFiles = plan.files
	}
	if uid != 0 && !p.Seal && r.socketDir != "" {
		// The plugin reaches its socket dir through a descriptor the host
		// opened, whatever the permissions of the directories above it
		// (a sealed root mounts it instead).
		d, err := os.OpenFile(r.socketDir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("isolation: socket dir: %w", err)
		}
		defer d.Close()
		sealFiles = append(sealFiles, d) // fd sealFD: nothing else uses it unsealed
		spec.SocketFD = sealFD
		spec.Env = replaceEnv(spec.Env, "PLUGIN_UNIX_SOCKET_DIR", socketViaFD)
		r.socketViaFD = true
	}
	if uid != 0 && !p.Seal && r.scratch != "" {
		// Likewise its scratch dir (its cwd, HOME and TMPDIR), which lives
		// in the run's state dir, perhaps under directories only root may
		// traverse: the entry fchdirs into the descriptor, and the plugin
		// (and any child it runs, which inherits it) names it by that.
		d, err := os.OpenFile(r.scratch, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("isolation: scratch dir: %w", err)
		}
		defer d.Close()
		spec.ScratchFD = sealFD + len(sealFiles)
		sealFiles = append(sealFiles, d)
		spec.Dir = ""
		via := "/proc/self/fd/" + strconv.Itoa(spec.ScratchFD)
		for _, k := range []string{"TMPDIR", "HOME", ScratchEnv} {
			if k == ScratchEnv && !hasEnv(spec.Env, k) {
				continue
			}
			spec.Env = replaceEnv(spec.Env, k, via)
		}
	}
	if p.Landlock {
		fsp := &fsPolicy{Read: p.ReadPaths, Write: []string{"/dev/null"}}
		if p.Seal {
			fsp.Read = []string{"/"} // the sealed root holds only what is allowed
		}
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
	reportR, reportW, err := os.Pipe()
	if err != nil {
		_ = gateR.Close()
		return err
	}
	// The spec travels through the gate pipe, not the environment, so the
	// plugin's environment holds nothing of it.
	r.cmd.Env = spec.Env
	r.cmd.ExtraFiles = append([]*os.File{gateR, bin, reportW, entry}, sealFiles...) // fds 3, 4, 5, 6, 7...
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
	} else if uid != 0 {
		attr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}
	}
	r.cmd.SysProcAttr = attr
	err = r.cmd.Start()
	_ = gateR.Close()
	_ = reportW.Close()
	if err != nil {
		_ = reportR.Close()
		return fmt.Errorf("isolation: start sandbox entry %s: %w", r.entryPath, err)
	}
	r.pid = r.cmd.Process.Pid
	r.report.watch(reportR)
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

// planSeal lists what the sealed root holds: the verified binary (mounted
// from its descriptor) and what it needs to exec, the profile's ReadPaths,
// the scratch and socket dirs (writable) and the device nodes.
func (r *sandboxRunner) planSeal(bin *os.File, env []string) (*sealPlanner, error) {
	pathEnv := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathEnv = v
		}
	}
	needs, err := ExecNeeds(r.target.Binary, pathEnv)
	if err != nil {
		return nil, err
	}
	s := newSealPlanner(sealFD)
	fail := func(err error) (*sealPlanner, error) { s.close(); return nil, err }
	if err := s.include(r.target.Binary, sealMount{}, int(bin.Fd()), false); err != nil {
		return fail(err)
	}
	for _, n := range needs[1:] {
		if err := s.include(n, sealMount{}, -1, false); err != nil {
			return fail(err)
		}
	}
	for _, p := range r.profile.ReadPaths {
		if err := s.include(p, sealMount{}, -1, false); err != nil {
			return fail(fmt.Errorf("%w (read path)", err))
		}
	}
	for _, p := range sealedExtras {
		if err := s.include(p, sealMount{}, -1, true); err != nil {
			return fail(err)
		}
	}
	for _, p := range sealedDevices {
		if err := s.include(p, sealMount{Dev: true}, -1, true); err != nil {
			return fail(err)
		}
	}
	for _, d := range []string{r.scratch, r.socketDir} {
		if d == "" {
			continue
		}
		if err := s.include(d, sealMount{Write: true}, -1, false); err != nil {
			return fail(err)
		}
	}
	return s, nil
}

// Wait waits for the plugin to exit. If its envelope saw an OOM kill or a
// pids-limit hit, the error is the *LimitError (wrapping the exit error),
// so the exit is reported as that limit and not as a generic crash.
func (r *sandboxRunner) Wait(context.Context) error {
	r.waitOnce.Do(func() {
		err := r.cmd.Wait()
		if serr := r.report.Err(); serr != nil && err != nil {
			err = fmt.Errorf("%w (%w)", serr, err)
		}
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
	if r.releaseUID != nil {
		r.releaseUID()
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
	d := fmt.Sprintf("plugin %s started through sandbox entry %s (profile %q)", r.target.Binary, r.entryPath, r.profile.Name)
	if err := r.report.Err(); err != nil {
		d += ": " + err.Error()
	}
	return d
}

// PluginToHost maps the socket a plugin made through its socket-dir
// descriptor back to the host path.
func (r *sandboxRunner) PluginToHost(n, a string) (string, string, error) {
	if rest, ok := strings.CutPrefix(a, socketViaFD+"/"); ok && r.socketViaFD && n == "unix" {
		return n, filepath.Join(r.socketDir, rest), nil
	}
	return n, a, nil
}

// socketViaFD is PLUGIN_UNIX_SOCKET_DIR for a plugin that reaches its
// socket dir through the descriptor it inherits.
var socketViaFD = "/proc/self/fd/" + strconv.Itoa(sealFD)

// ScratchEnv names the instance's scratch dir in a plugin's environment
// (the supervisor sets it; isolation may rewrite how it is reached).
const ScratchEnv = "RSPP_SCRATCH_DIR"

func hasEnv(env []string, key string) bool {
	for _, kv := range env {
		if strings.HasPrefix(kv, key+"=") {
			return true
		}
	}
	return false
}

// replaceEnv sets key=val in env, replacing an existing entry.
// HostUIDEnv is externalnode.HostUIDEnv (isolation does not import it):
// the uid the plugin accepts connections from.
const HostUIDEnv = "RSPP_HOST_UID"

// overflowUID is the uid a user namespace shows for unmapped uids.
func overflowUID() int {
	b, err := os.ReadFile("/proc/sys/kernel/overflowuid")
	if err != nil {
		return 65534
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 65534
	}
	return n
}

func replaceEnv(env []string, key, val string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return append(out, key+"="+val)
}
func (r *sandboxRunner) HostToPlugin(n, a string) (string, string, error) { return n, a, nil }

// SetupReport carries the entry point's reason for a failed sandbox set-up
// (it writes one line to a pipe that closes on exec) to whoever reports
// the start error. The zero value is ready; one report serves one start.
type SetupReport struct {
	mu   sync.Mutex
	err  error
	done chan struct{}
}

func (s *SetupReport) set(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
	}
}

// watch reads the pipe until the entry execs (EOF, nothing said) or fails.
func (s *SetupReport) watch(r *os.File) {
	done := make(chan struct{})
	s.mu.Lock()
	s.done = done
	s.mu.Unlock()
	go func() {
		defer close(done)
		defer r.Close()
		b, _ := io.ReadAll(io.LimitReader(r, 4096))
		if msg := strings.TrimSpace(string(b)); msg != "" {
			if !strings.Contains(msg, ErrSandboxSetup.Error()) {
				msg = ErrSandboxSetup.Error() + ": " + msg
			}
			s.set(&setupError{msg: msg})
		}
	}()
}

// Err is the set-up failure, nil if there was none (or the entry point
// has not got that far yet; it waits up to a second for the entry to exec
// or fail).
func (s *SetupReport) Err() error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	if done != nil {
		select {
		case <-done:
		case <-time.After(time.Second):
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// setupError is the entry point's reason; errors.Is matches ErrSandboxSetup.
type setupError struct{ msg string }

func (e *setupError) Error() string   { return "isolation: " + e.msg }
func (e *setupError) Is(t error) bool { return t == ErrSandboxSetup }
