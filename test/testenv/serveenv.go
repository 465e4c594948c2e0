package testenv

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"time"
)

// StartServeEnv starts `rspp serve --config cfg --timeline
// dir/timeline.jsonl args...` with env added to the environment and
// returns once a line of its stdout matches ready (within 60 s); Addr is
// then the regexp's first group, if any. For serve modes that open no
// HTTP page (the LiveKit worker).
func StartServeEnv(rspp, cfg, dir string, env []string, ready string, args ...string) (*Serve, error) {
	re, err := regexp.Compile(ready)
	if err != nil {
		return nil, err
	}
	return startServe(rspp, cfg, dir, env, re, args...)
}

// startServe starts `rspp serve --config cfg --timeline dir/timeline.jsonl
// args...` with env added (it dies with the test: Pdeathsig) and returns
// once a line of its stdout matches ready, within 60 s; Addr is then the
// regexp's first group, if any.
func startServe(rspp, cfg, dir string, env []string, ready *regexp.Regexp, args ...string) (*Serve, error) {
	s := &Serve{Timeline: filepath.Join(dir, "timeline.jsonl"), exited: make(chan struct{})}
	s.cmd = exec.Command(rspp, append([]string{"serve", "--config", cfg, "--timeline", s.Timeline}, args...)...)
	s.cmd.Env = append(os.Environ(), env...)
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	pr, pw := io.Pipe()
	s.cmd.Stdout = io.MultiWriter(&s.out, pw)
	s.cmd.Stderr = &s.out
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		_ = s.cmd.Wait()
		pw.Close()
		close(s.exited)
	}()
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := ready.FindStringSubmatch(sc.Text()); m != nil {
				g := ""
				if len(m) > 1 {
					g = m[1]
				}
				select {
				case found <- g:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	select {
	case s.Addr = <-found:
		return s, nil
	case <-s.exited:
		return nil, fmt.Errorf("rspp serve exited before it was ready (%v); output:\n%s", s.cmd.ProcessState, s.Output())
	case <-time.After(60 * time.Second):
		_ = s.Stop(5 * time.Second)
		return nil, fmt.Errorf("rspp serve was not ready within 60 s; output:\n%s", s.Output())
	}
}

// Signal sends sig to the rspp process.
func (s *Serve) Signal(sig syscall.Signal) error { return s.cmd.Process.Signal(sig) }
