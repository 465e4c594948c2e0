// Package etcdtest starts a real etcd server (Debian's etcd-server) for
// tests: a temp data dir, free loopback ports, stopped and removed when
// the test ends. Imported only from _test.go files.
package etcdtest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Server is a running etcd.
type Server struct {
	Endpoint string // http://127.0.0.1:port
	cmd      *exec.Cmd
	log      bytes.Buffer
}

// Binary is the etcd server binary, "" if not installed.
func Binary() string {
	if p, err := exec.LookPath("etcd"); err == nil {
		return p
	}
	return ""
}

// Require skips t when no etcd binary is installed.
func Require(t testing.TB) string {
	t.Helper()
	bin := Binary()
	if bin == "" {
		t.Skip("etcd not installed: apt-get install etcd-server (a real lease service is needed)")
	}
	return bin
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start runs etcd until the test ends (skipping when it is not installed).
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Require(t)
	dir, err := os.MkdirTemp("", "etcdtest")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	var s *Server
	for attempt := 0; attempt < 3; attempt++ {
		if s, err = start(bin, dir, attempt); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("etcd: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

func start(bin, dir string, attempt int) (*Server, error) {
	cp, err := freePort()
	if err != nil {
		return nil, err
	}
	pp, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &Server{Endpoint: fmt.Sprintf("http://127.0.0.1:%d", cp)}
	peer := fmt.Sprintf("http://127.0.0.1:%d", pp)
	s.cmd = exec.Command(bin, "--name", "test", "--data-dir", filepath.Join(dir, fmt.Sprintf("data%d", attempt)),
		"--listen-client-urls", s.Endpoint, "--advertise-client-urls", s.Endpoint,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "test="+peer, "--log-level", "error")
	s.cmd.Stdout, s.cmd.Stderr = &s.log, &s.log
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{s.Endpoint}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		s.Stop()
		return nil, err
	}
	defer cli.Close()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err = cli.Status(ctx, s.Endpoint)
		cancel()
		if err == nil {
			return s, nil
		}
		if s.cmd.ProcessState != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.Stop()
	return nil, fmt.Errorf("not ready: %v\n%s", err, s.log.String())
}

// Signal sends sig to the etcd process (SIGSTOP/SIGCONT: a lease
// service that stops answering).
func (s *Server) Signal(sig os.Signal) error {
	if s.cmd == nil || s.cmd.Process == nil {
		return os.ErrProcessDone
	}
	return s.cmd.Process.Signal(sig)
}

// Stop kills etcd and reaps it. Safe to call twice.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}
