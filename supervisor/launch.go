package supervisor

import (
	"context"
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/isolation"
	"github.com/rspp/rspp/supervisor/config"
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

	SocketDir    string
	StartTimeout time.Duration
	Logger       hclog.Logger
}

// start launches the process and completes the handshake. The envelope
// (if any) is closed again when the start fails.
func (l Launch) start(ctx context.Context, name string) (*externalnode.Instance, *isolation.Envelope, error) {
	sc := externalnode.StartConfig{
		Name: name, Binary: l.Binary, Args: l.Args, Env: l.Env, Checksum: l.Checksum,
		SocketDir: l.SocketDir, StartTimeout: l.StartTimeout,
	}
	if l.Logger != nil {
		sc.Logger = pluginLogger{l.Logger}
	}
	var env *isolation.Envelope
	var report *isolation.SetupReport
	if l.Envelopes != nil {
		var err error
		if env, err = l.Envelopes.New(name, l.Tenant, l.Profile.Limits); err != nil {
			return nil, nil, err
		}
		t := isolation.Target{Binary: l.Binary, Args: l.Args, Env: l.Env, Report: &isolation.SetupReport{}}
		report = t.Report
		if len(l.Checksum) > 0 {
			// isolation verifies the very fd it execs; the host-side check
			// would only hash the file a second time.
			t.Secure = &plugin.SecureConfig{Checksum: l.Checksum, Hash: sha256.New()}
			sc.Checksum = nil
		}
		sc.Runner = l.Profile.RunnerFunc(env, t)
		sc.SkipHostEnv = l.Profile.SkipHostEnv
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
		return nil, nil, fmt.Errorf("start %s: %w", l.Binary, err)
	}
	return inst, env, nil
}

// providerProfile is the isolation profile of a configured provider: its
// profile with its limits, read paths and user applied.
func providerProfile(p *config.Provider) (isolation.Profile, error) {
	return isolation.ProfileByName(p.Profile, isolation.Override{
		Limits:    isolation.Limits{MemoryBytes: p.Limits.MemoryMB << 20, CPUCores: p.Limits.CPU, Pids: p.Limits.Pids},
		ReadPaths: p.ReadPaths,
		RunAsRoot: p.User == "root",
	})
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
