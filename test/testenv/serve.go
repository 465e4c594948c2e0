package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"regexp"
	"sync"
	"syscall"
	"time"
)

// Serve is one `rspp serve --listen` process of a test: the live path as
// a user starts it, on a free loopback port.
type Serve struct {
	Addr     string // host:port it listens on
	Timeline string // its JSON Lines timeline, written as things happen

	cmd    *exec.Cmd
	out    syncBuffer // stdout and stderr
	exited chan struct{}
}

// listening is the line rspp serve prints once it listens.
var listening = regexp.MustCompile(`listening on http://([^/\s]+)/`)

// StartServe starts `rspp serve --config cfg --timeline
// dir/timeline.jsonl args...` and returns once it serves its page (HTTP
// 200 at /), within 60 s. args (usually `--listen 127.0.0.1:0`) or the
// config's transports block say where it listens. Stop it when done.
func StartServe(rspp, cfg, dir string, args ...string) (*Serve, error) {
	s, err := startServe(rspp, cfg, dir, nil, listening, args...)
	if err != nil {
		return nil, err
	}
	fail := func(format string, a ...any) (*Serve, error) {
		_ = s.Stop(5 * time.Second)
		return nil, fmt.Errorf(format+"; output:\n%s", append(a, s.Output())...)
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(s.URL() + "/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		select {
		case <-s.exited:
			return fail("rspp serve exited before serving its page (%v)", s.cmd.ProcessState)
		default:
		}
		if time.Now().After(deadline) {
			return fail("%s/ did not answer 200 within 60 s: %v", s.URL(), err)
		}
	}
}

// URL is the page's base URL (http://addr); WSURL the WebSocket endpoint.
func (s *Serve) URL() string   { return "http://" + s.Addr }
func (s *Serve) WSURL() string { return "ws://" + s.Addr + "/ws" }

// Pid is the rspp process.
func (s *Serve) Pid() int { return s.cmd.Process.Pid }

// Exited is closed once the process has exited.
func (s *Serve) Exited() <-chan struct{} { return s.exited }

// Output is what rspp wrote to stdout and stderr so far.
func (s *Serve) Output() string { return s.out.String() }

// ErrStopTimeout is a server that did not exit within the grace time of
// SIGINT and was killed.
var ErrStopTimeout = errors.New("rspp serve did not exit after SIGINT; killed")

// Stop ends rspp with SIGINT, as a person would, waits up to grace, then
// kills it. Safe to call twice.
func (s *Serve) Stop(grace time.Duration) error {
	select {
	case <-s.exited:
		return nil
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.exited:
		return nil
	case <-time.After(grace):
		_ = s.cmd.Process.Kill()
		<-s.exited
		return ErrStopTimeout
	}
}

// syncBuffer is a bytes.Buffer written by the process's output copiers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
