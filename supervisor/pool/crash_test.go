package pool

import (
	"errors"
	"testing"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/isolation"
	"github.com/rspp/rspp/kernel"
)

func TestClassifyCrashes(t *testing.T) {
	oom := &isolation.LimitError{Kind: isolation.ErrOOM, Instance: "tts#1.1", Tenant: "acme"}
	pids := &isolation.LimitError{Kind: isolation.ErrPidsLimit, Instance: "tts#1.1"}
	killed := &externalnode.ExitError{Pid: 7, Code: -1, Signal: "killed"}
	for _, c := range []struct {
		name   string
		cause  error
		limit  error
		hung   bool
		kind   CrashKind
		kernel error
	}{
		{"sigkill", killed, nil, false, CrashSignal, kernel.ErrNodeCrashed},
		{"exit", &externalnode.ExitError{Pid: 7, Code: 3}, nil, false, CrashExit, kernel.ErrNodeCrashed},
		{"stream", &externalnode.ProtocolError{Msg: "x: stream broken: EOF"}, nil, false, CrashStream, kernel.ErrNodeCrashed},
		{"protocol", &externalnode.ProtocolError{Msg: "oversized frame"}, nil, false, CrashProtocol, kernel.ErrProtocol},
		{"hung", killed, nil, true, CrashHung, kernel.ErrNodeCrashed},
		{"oom", killed, oom, false, CrashOOM, kernel.ErrResourceLimit},
		{"pids", killed, pids, false, CrashPids, kernel.ErrResourceLimit},
		{"flood", &externalnode.FloodError{Instance: "tts#1.1", Invocation: "i1", Frames: 1024}, nil, false, CrashFlood, kernel.ErrResourceLimit},
	} {
		kind, err := classify(c.cause, c.limit, c.hung)
		ce := &CrashError{Instance: "tts#1.1", Kind: kind, Err: err}
		if kind != c.kind || !errors.Is(ce, c.kernel) {
			t.Errorf("%s: kind %s (want %s), is %v: %v", c.name, kind, c.kind, c.kernel, errors.Is(ce, c.kernel))
		}
	}
	_, err := classify(killed, oom, false)
	var le *isolation.LimitError
	if !errors.As(&CrashError{Kind: CrashOOM, Err: err}, &le) || le.Instance != "tts#1.1" || le.Tenant != "acme" || !errors.Is(err, isolation.ErrOOM) {
		t.Fatalf("OOM crash does not carry its attribution: %v", err)
	}
	if !errors.Is(&CrashError{Kind: CrashHandshake, Err: errors.New("x")}, kernel.ErrNodeUnavailable) {
		t.Fatal("handshake failure is not ErrNodeUnavailable")
	}
}
