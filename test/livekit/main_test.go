// Package livekit runs rspp as a LiveKit agent worker against a real
// livekit-server (the pinned build), with the real provider plugins, and
// talks to it over WebRTC as participants would (transports/livekit/
// lkclient). Everything runs inside a network namespace the test makes
// itself (unshare --net, a veth pair with test addresses): pion gathers
// no loopback candidates, and the namespace, its veths and its processes
// vanish with the test.
package livekit

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rspp/rspp/isolation"
	"github.com/rspp/rspp/test/lkenv"
	"github.com/rspp/rspp/test/testenv"
)

var (
	bins    testenv.Bins
	opusBin string
	lkBin   string
	skipWhy string
)

func TestMain(m *testing.M) {
	isolation.MaybeSandboxMain()
	if os.Geteuid() != 0 {
		skipWhy = "needs root: the test makes a network namespace and a veth pair"
		os.Exit(m.Run())
	}
	if !lkenv.InNetns() {
		os.Exit(lkenv.RunInNetns(os.Args[1:]))
	}
	os.Exit(inner(m))
}

func inner(m *testing.M) int {
	var err error
	if lkBin, err = lkenv.ServerBinary(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := lkenv.SetupNet(); err != nil {
		fmt.Fprintln(os.Stderr, "test network:", err)
		return 1
	}
	defer lkenv.TeardownNet()
	dir, err := os.MkdirTemp("", "rspp-lk-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	opusBin = filepath.Join(dir, "rspp-opus")
	root, err := testenv.ModuleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := lkenv.BuildOpus(root, opusBin); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	srv, err := lkenv.StartServer(lkBin, dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := testenv.RunWithBins(m, "rspp-lk-bin-", &bins)
	srv.Stop()
	// Codec helpers end with their session (or with the rspp that ran
	// them, even when it was SIGKILLed).
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		left := testenv.ProcsUnder(dir)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(os.Stderr, "codec helpers left behind: %v\n", left)
			code = 1
			break
		}
	}
	if code != 0 {
		b, _ := os.ReadFile(srv.Log)
		fmt.Fprintf(os.Stderr, "livekit-server log (tail):\n%s\n", tail(string(b), 4000))
	}
	return code
}

func requireEnv(t *testing.T) {
	t.Helper()
	if skipWhy != "" {
		t.Skip(skipWhy)
	}
}
