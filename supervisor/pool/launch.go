package pool

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/isolation"
)

// Launch says how to start one instance of a pool's plugin. With Envelopes
// set, every instance gets its own cgroup envelope and is started through
// the isolation sandbox entry point with Profile; without, it is a plain
// child process (own process group, Pdeathsig).
type Launch struct {
	Binary   string
	Args     []string
	Env      []string
	Checksum []byte

	Envelopes *isolation.Envelopes // nil: no isolation
	Profile   isolation.Profile
	Tenant    string

	SocketDir string
	// ScratchRoot holds one scratch dir per instance, removed when the
	// instance stops (and swept with the run dir after a crash of rspp).
	// The plugin finds its dir in RSPP_SCRATCH_DIR; providers put their
	// temporary files there. With isolation, the profile's ScratchRoot
	// must be the same dir: the sandbox makes and removes the dir then.
	ScratchRoot  string
	StartTimeout time.Duration
	Logger       hclog.Logger
	Channel      externalnode.Channel // default externalnode.ChannelPeerCred
}

// ScratchEnv is the variable naming an instance's scratch dir.
const ScratchEnv = isolation.ScratchEnv

// lowWeightLimit bounds how long a replacement runs at the lowest CPU
// weight: on a machine saturated by other work it would otherwise never
// finish its handshake.
const lowWeightLimit = 500 * time.Millisecond

// start launches the process and completes the handshake. It returns the
// instance's scratch dir too. The envelope and scratch dir (if any) are
// removed again when the start fails.
//
// A replacement (a restart after a crash) starts at the lowest CPU weight
// for up to lowWeightLimit: a crash loop then only takes CPU that serving
// instances leave. First starts and upgrades start at the normal weight.
func (l Launch) start(ctx context.Context, name string, replacement bool) (*externalnode.Instance, *isolation.Envelope, string, error) {
	sc := externalnode.StartConfig{
		Name: name, Binary: l.Binary, Args: l.Args, Env: l.Env, Checksum: l.Checksum,
		SocketDir: l.SocketDir, StartTimeout: l.StartTimeout, Channel: l.Channel,
	}
	if l.Logger != nil {
		sc.Logger = pluginLogger{l.Logger}
	}
	var (
		env     *isolation.Envelope
		scratch string
		report  *isolation.SetupReport
	)
	if l.Envelopes != nil {
		var err error
		if env, err = l.Envelopes.New(name, l.Tenant, l.Profile.Limits); err != nil {
			return nil, nil, "", err
		}
		if replacement {
			if err := env.Starting(); err != nil && l.Logger != nil {
				l.Logger.Warn("cannot lower a restarting instance's CPU weight", "instance", name, "error", err)
			}
			restore := time.AfterFunc(lowWeightLimit, func() { l.serving(env, name) })
			defer restore.Stop()
		}
		env2 := slices.Clone(l.Env)
		if l.Profile.ScratchRoot != "" {
			// The sandbox makes ScratchRoot/<envelope name> and points
			// TMPDIR at it; a trusted plugin keeps the host's TMPDIR, so
			// the dir is also named explicitly.
			scratch = filepath.Join(l.Profile.ScratchRoot, env.Name())
			env2 = append(env2, ScratchEnv+"="+scratch)
		}
		if m := l.Profile.Limits.MemoryBytes; m > 0 {
			// The SDK bounds its garbage collector's target by it.
			env2 = append(env2, externalnode.MemoryLimitEnv+"="+strconv.FormatInt(m, 10))
		}
		t := isolation.Target{Binary: l.Binary, Args: l.Args, Env: env2, Report: &isolation.SetupReport{}}
		report = t.Report
		if len(l.Checksum) > 0 {
			// isolation verifies the very fd it execs; the host-side check
			// would only hash the file a second time.
			t.Secure = &plugin.SecureConfig{Checksum: l.Checksum, Hash: sha256.New()}
			sc.Checksum = nil
		}
		sc.Runner = l.Profile.RunnerFunc(env, t)
		sc.SkipHostEnv = l.Profile.SkipHostEnv
	} else if l.ScratchRoot != "" {
		var err error
		if scratch, err = newScratchDir(l.ScratchRoot, name); err != nil {
			return nil, nil, "", err
		}
		sc.Env = append(slices.Clone(l.Env), ScratchEnv+"="+scratch, "TMPDIR="+scratch)
	}
	inst, err := externalnode.Start(ctx, sc)
	if err != nil {
		// Say why the sandbox refused to start the plugin, and whether it
		// died of a limit (a pids limit hit while starting is a
		// resource_limit failure like any other).
		if serr := report.Err(); serr != nil {
			err = fmt.Errorf("%w: %w", serr, err)
		}
		if env != nil {
			if lerr := env.Failure(); lerr != nil {
				kind, cerr := classify(err, lerr, false)
				err = &CrashError{Provider: name, Instance: name, Tenant: l.Tenant, Kind: kind, Err: fmt.Errorf("%w (%w)", cerr, err)}
			}
			_ = env.Close()
		}
		if scratch != "" {
			_ = os.RemoveAll(scratch)
		}
		return nil, nil, "", fmt.Errorf("start %s: %w", l.Binary, err)
	}
	if env != nil && replacement {
		l.serving(env, name)
	}
	return inst, env, scratch, nil
}

// serving gives a replacement's envelope the normal CPU weight again.
func (l Launch) serving(env *isolation.Envelope, name string) {
	if err := env.Serving(); err != nil && l.Logger != nil {
		l.Logger.Warn("cannot restore a started instance's CPU weight", "instance", name, "error", err)
	}
}

var unsafeScratch = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// newScratchDir makes a fresh private dir for instance name under root.
func newScratchDir(root, name string) (string, error) {
	if err := os.MkdirAll(root, 0o711); err != nil {
		return "", fmt.Errorf("scratch dir: %w", err)
	}
	clean := unsafeScratch.ReplaceAllString(name, "_")
	if len(clean) > 64 {
		clean = clean[:64]
	}
	dir, err := os.MkdirTemp(root, clean+"-")
	if err != nil {
		return "", fmt.Errorf("scratch dir: %w", err)
	}
	return dir, nil
}

// pluginLogger is the logger handed to go-plugin. go-plugin logs every
// non-zero plugin exit as an error, including the SIGKILL with which the
// supervisor stops drained instances; the supervisor logs real crashes
// itself, classified, so that line is dropped.
type pluginLogger struct{ hclog.Logger }

func (l pluginLogger) Error(msg string, args ...any) {
	if msg == "plugin process exited" {
		return
	}
	l.Logger.Error(msg, args...)
}

func (l pluginLogger) Named(name string) hclog.Logger { return pluginLogger{l.Logger.Named(name)} }
func (l pluginLogger) With(args ...any) hclog.Logger  { return pluginLogger{l.Logger.With(args...)} }
func (l pluginLogger) ResetNamed(name string) hclog.Logger {
	return pluginLogger{l.Logger.ResetNamed(name)}
}
