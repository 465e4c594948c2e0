package wsload

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"text/template"
	"time"
)

// ServerConfig is a `rspp serve --listen` with the light load pipeline:
// energystt (STT by audio energy, a fixed transcript) -> rules (the real
// LLM stand-in) -> espeak (the real TTS), each its own plugin process.
type ServerConfig struct {
	RSPP      string // the rspp binary
	STT       string // the energystt node binary
	Rules     string // the rules provider binary
	Espeak    string // the espeak provider binary
	Replies   string // the rules provider's replies.yaml
	Instances int    // per provider (default 1)
	// Dir holds the config, the timeline and the server's output; it must
	// exist. StateDir is the runtime's state dir (keep its path short: it
	// holds unix sockets); it must exist.
	Dir, StateDir string
	// Args are more arguments to rspp serve.
	Args []string
}

var serverConfig = template.Must(template.New("cfg").Parse(`version: 1
runtime:
  state_dir: {{.StateDir}}
providers:
  energystt:
    kind: stt
    binary: {{.STT}}
    instances: {{.Instances}}
  rules:
    kind: llm
    binary: {{.Rules}}
    instances: {{.Instances}}
    config:
      replies: {{.Replies}}
  espeak:
    kind: tts
    binary: {{.Espeak}}
    instances: {{.Instances}}
pipeline:
  nodes:
    - {id: stt, provider: energystt, timeout: 15s}
    - {id: llm, provider: rules, timeout: 15s}
    - {id: tts, provider: espeak, timeout: 15s}
  edges:
    - {from: ingress, to: stt}
    - {from: stt, to: llm}
    - {from: llm, to: tts}
    - {from: tts, to: egress}
vad: {threshold_db: -40, min_speech: 60ms, hangover: 400ms}
`))

// Server is a running rspp serve --listen.
type Server struct {
	URL      string // the WebSocket endpoint
	Addr     string
	Timeline string // JSON Lines, written as things happen
	cmd      *exec.Cmd
	out      *os.File
	waited   chan struct{}
}

// StartServer writes the config, starts rspp serve --listen on a free
// loopback port and returns once it answers HTTP (within 60 s).
func StartServer(c ServerConfig) (*Server, error) {
	if c.Instances == 0 {
		c.Instances = 1
	}
	var cfg bytes.Buffer
	if err := serverConfig.Execute(&cfg, c); err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(c.Dir, "config.yaml")
	if err := os.WriteFile(cfgPath, cfg.Bytes(), 0o644); err != nil {
		return nil, err
	}
	addr, err := freeLoopbackPort()
	if err != nil {
		return nil, err
	}
	out, err := os.Create(filepath.Join(c.Dir, "rspp.log"))
	if err != nil {
		return nil, err
	}
	s := &Server{URL: "ws://" + addr + "/ws", Addr: addr, Timeline: filepath.Join(c.Dir, "timeline.jsonl"), out: out, waited: make(chan struct{})}
	args := append([]string{"serve", "--config", cfgPath, "--listen", addr, "--timeline", s.Timeline}, c.Args...)
	s.cmd = exec.Command(c.RSPP, args...)
	s.cmd.Stdout, s.cmd.Stderr = out, out
	if err := s.cmd.Start(); err != nil {
		out.Close()
		return nil, err
	}
	go func() { _ = s.cmd.Wait(); close(s.waited) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/")
		if err == nil {
			resp.Body.Close()
			return s, nil
		}
		select {
		case <-s.waited:
			return nil, fmt.Errorf("rspp serve exited before serving (%v):\n%s", s.cmd.ProcessState, s.Output())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = s.Stop(time.Second)
			return nil, fmt.Errorf("rspp serve did not answer on %s within 60s:\n%s", addr, s.Output())
		}
	}
}

// Output is what the server wrote to stdout and stderr so far.
func (s *Server) Output() string {
	b, _ := os.ReadFile(s.out.Name())
	return string(b)
}

// ErrStopTimeout is a server that did not exit within the grace time of
// SIGINT and was killed.
var ErrStopTimeout = errors.New("rspp serve did not exit after SIGINT; killed")

// Stop sends SIGINT, waits up to grace for the server to exit, then kills
// it. It is safe to call twice.
func (s *Server) Stop(grace time.Duration) error {
	defer s.out.Close()
	select {
	case <-s.waited:
		return nil
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.waited:
		return nil
	case <-time.After(grace):
		_ = s.cmd.Process.Kill()
		<-s.waited
		return ErrStopTimeout
	}
}

func freeLoopbackPort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
