package livekit

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rspp/rspp/providers/speechtest"
	"github.com/rspp/rspp/test/lkenv"
	"github.com/rspp/rspp/test/testenv"
	"github.com/rspp/rspp/transports/livekit/lkclient"
)

const (
	serverIP  = lkenv.ServerIP
	apiKey    = lkenv.APIKey
	apiSecret = lkenv.APISecret
)

func wsURL() string { return lkenv.WSURL() }

func tail(s string, n int) string { return lkenv.Tail(s, n) }

// token mints a participant token for room.
func token(t testing.TB, room, identity string) string {
	t.Helper()
	tok, err := lkenv.Token(room, identity)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func dispatch(ctx context.Context, room, agentName string) error {
	return lkenv.Dispatch(ctx, room, agentName)
}

// worker is one `rspp serve --livekit-url` process.
type worker struct {
	*testenv.Serve
	state string // its runtime.state_dir
}

// startWorker starts rspp serve as a LiveKit worker with the example
// pipeline and waits until it registered.
func startWorker(t *testing.T, agentName string, extra ...string) *worker {
	t.Helper()
	return startWorkerCfg(t, agentName, "", extra...)
}

// startWorkerCfg is startWorker with cfgTail appended to the config.
func startWorkerCfg(t *testing.T, agentName, cfgTail string, extra ...string) *worker {
	t.Helper()
	speechtest.Require(t)
	dir := t.TempDir()
	state, err := os.MkdirTemp("", "rs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(state) })
	cfg, err := testenv.WriteConfig(dir, bins, testenv.ConfigOptions{StateDir: state, TTSRealtime: true})
	if err != nil {
		t.Fatal(err)
	}
	if cfgTail != "" {
		f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.WriteString(cfgTail)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	args := append([]string{"--livekit-url", wsURL(), "--livekit-agent-name", agentName, "--livekit-opus", opusBin, "--log-level", "info"}, extra...)
	s, err := testenv.StartServeEnv(bins.RSPP, cfg, dir, []string{"LIVEKIT_API_KEY=" + apiKey, "LIVEKIT_API_SECRET=" + apiSecret},
		`livekit worker (\S+) registered`, args...)
	if err != nil {
		t.Fatal(err)
	}
	w := &worker{Serve: s, state: state}
	t.Cleanup(func() {
		_ = w.Stop(20 * time.Second)
		if t.Failed() {
			t.Logf("rspp output:\n%s", tail(w.Output(), 6000))
		}
	})
	return w
}

// join connects a test participant.
func join(t *testing.T, room, identity string, o lkclient.Options) *lkclient.Client {
	t.Helper()
	if o.OpusBinary == "" {
		o.OpusBinary = opusBin
	}
	c, err := lkclient.Join(context.Background(), wsURL(), token(t, room, identity), identity, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// WaitOutput waits until the worker's output holds s.
func (w *worker) WaitOutput(limit time.Duration, s string) (string, error) {
	deadline := time.Now().Add(limit)
	for {
		out := w.Output()
		if strings.Contains(out, s) {
			return out, nil
		}
		if time.Now().After(deadline) {
			return out, fmt.Errorf("worker output has no %q within %s; tail:\n%s", s, limit, tail(out, 3000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
