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
	if l.Envelopes != nil {
		var err error
		if env, err = l.Envelopes.New(name, l.Tenant, l.Profile.Limits); err != nil {
			return nil, nil, err
		}
		t := isolation.Target{Binary: l.Binary, Args: l.Args, Env: l.Env}
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
		if env != nil {
			_ = env.Close()
		}
		return nil, nil, fmt.Errorf("start %s: %w", l.Binary, err)
	}
	return inst, env, nil
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
