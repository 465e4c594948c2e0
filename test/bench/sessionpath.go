package bench

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/kernel/eventabi"
	"github.com/rspp/rspp/supervisor/session"
)

// sessionPath is the frame round trip as a session sees it, kernel ->
// plugin -> kernel: transport ingress -> runner inbox -> kernel (gateway,
// routing, stamping, lanes) -> runner -> externalnode -> echo plugin ->
// externalnode -> runner inbox -> kernel -> egress. The graph is
// ingress -> echo -> egress and a turn is held open for the whole run.
type sessionPath struct {
	ctx   context.Context
	dir   string
	inst  *externalnode.Instance
	sess  *session.Session
	out   chan eventabi.Event
	frame eventabi.Event
}

func startSessionPath(ctx context.Context, self, tmp string, frame []byte) (*sessionPath, error) {
	dir, err := os.MkdirTemp(tmp, "rspp-bench-session-")
	if err != nil {
		return nil, err
	}
	inst, err := externalnode.Start(ctx, externalnode.StartConfig{
		Name: "bench/echo-session", Binary: self, Env: []string{PluginEnv + "=" + pluginEchoNode},
		SocketDir: dir, StartTimeout: startTimeout,
	})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("session path: %w", err)
	}
	p := &sessionPath{ctx: ctx, dir: dir, inst: inst, out: make(chan eventabi.Event, 1),
		frame: eventabi.Event{Type: eventabi.TypeAudioFrame, Lane: eventabi.LaneData, SchemaVersion: eventabi.SchemaVersion,
			Audio: &eventabi.Audio{PCM: frame, SampleRate: 16000, Channels: 1}}}
	p.sess, err = session.Open(session.Config{
		Kernel: kernel.SessionConfig{
			SessionID: "bench-session", Epoch: 1,
			Graph: kernel.GraphSpec{
				Nodes: []kernel.NodeSpec{{ID: "echo", Kind: "custom", Provider: "echo", Timeout: time.Hour}},
				Edges: []kernel.EdgeSpec{{From: kernel.Ingress, To: "echo"}, {From: "echo", To: kernel.Egress}},
			},
			Bindings: oneBinding{}, VAD: kernel.VADConfig{Disabled: true},
		},
		Pools:  instancePool{inst},
		Output: chanOutput(p.out),
	})
	if err != nil {
		_ = p.close()
		return nil, fmt.Errorf("session path: %w", err)
	}
	// The transport says the user speaks: the turn opens and stays open.
	if err := p.sess.Ingest(eventabi.Event{Type: eventabi.TypeSpeechStart, Lane: eventabi.LaneControl, SchemaVersion: eventabi.SchemaVersion}); err != nil {
		_ = p.close()
		return nil, fmt.Errorf("session path: speech start: %w", err)
	}
	return p, nil
}

func (p *sessionPath) roundTrip() error {
	p.frame.MediaNanos += int64(20 * time.Millisecond)
	if err := p.sess.Ingest(p.frame); err != nil {
		return fmt.Errorf("session path: ingest: %w", err)
	}
	select {
	case ev := <-p.out:
		if ev.Audio == nil || len(ev.Audio.PCM) != len(p.frame.Audio.PCM) {
			return fmt.Errorf("session path: egress is not the frame: %+v", ev)
		}
		return nil
	case <-time.After(5 * time.Second):
		return fmt.Errorf("session path: no egress within 5s (turn %q)", p.sess.ActiveTurn())
	case <-p.ctx.Done():
		return p.ctx.Err()
	}
}

func (p *sessionPath) pid() int { return p.inst.Pid() }

func (p *sessionPath) close() error {
	if p.sess != nil {
		p.sess.Close("bench_end")
	}
	p.inst.Kill()
	return os.RemoveAll(p.dir)
}

// oneBinding binds every provider to the one echo instance.
type oneBinding struct{}

func (oneBinding) Binding(provider string) (kernel.Binding, bool) {
	return kernel.Binding{Provider: provider, Version: "bench", Pool: provider}, true
}

// instancePool serves every invocation from one instance.
type instancePool struct{ inst *externalnode.Instance }

func (p instancePool) Open(_ string, req externalnode.OpenRequest, _ []string, h externalnode.Handler) (session.Call, error) {
	c, err := p.inst.Open(req, h)
	if err != nil {
		return nil, err
	}
	return instanceCall{c}, nil
}

type instanceCall struct{ *externalnode.HostCall }

func (c instanceCall) Instance() string { return "bench/echo-session" }

func (c instanceCall) Cancel(reason string) {
	_ = c.HostCall.Cancel(reason)
	c.HostCall.Abandon()
}

// chanOutput hands egress to the waiting round trip; never blocks the
// session (a frame nobody waits for would be a bug).
type chanOutput chan eventabi.Event

func (o chanOutput) Send(ev eventabi.Event) error {
	select {
	case o <- ev:
	default:
	}
	return nil
}

func (chanOutput) Fence(string, string) {}
