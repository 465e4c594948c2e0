package wsload

import (
	"bytes"
	"os"
	"path/filepath"
	"text/template"

	"github.com/rspp/rspp/test/testenv"
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

// Server is a running rspp serve --listen; URL is its WebSocket endpoint.
type Server struct {
	URL string
	*testenv.Serve
}

// StartServer writes the config and starts rspp serve --listen on a free
// loopback port; it returns once the server answers HTTP (within 60 s).
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
	s, err := testenv.StartServe(c.RSPP, cfgPath, c.Dir, append([]string{"--listen", "127.0.0.1:0"}, c.Args...)...)
	if err != nil {
		return nil, err
	}
	return &Server{URL: s.WSURL(), Serve: s}, nil
}
