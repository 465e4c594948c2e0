// Package config loads and validates the runtime's YAML configuration: the
// providers (plugin binaries, their isolation profile and their own config
// block), the pipeline graph and kernel policies. It owns parsing and
// validation only; it starts nothing. A bad config is a *Error naming the key
// or file that is wrong, so nothing starts half-way.
//
// It imports kernel/... and externalnode of this module; no other
// supervisor room.
package config

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/docker/go-units"
	"go.yaml.in/yaml/v3"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/kernel/eventabi"
	"github.com/rspp/rspp/supervisor/builtin"
)

// ErrInvalid is the kind of every config error (errors.Is).
var ErrInvalid = errors.New("invalid config")

// Error names the key (dotted path) or file that is wrong.
type Error struct {
	File string
	Key  string
	Msg  string
}

func (e *Error) Error() string {
	if e.Key == "" {
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", e.File, e.Key, e.Msg)
}

func (e *Error) Unwrap() error { return ErrInvalid }

// Duration accepts Go duration strings ("250ms", "10s") in YAML.
type Duration time.Duration

func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: bad duration %q (want e.g. 250ms, 10s)", n.Line, s)
	}
	*d = Duration(v)
	return nil
}

// Config is the whole file.
type Config struct {
	Version   int                  `yaml:"version"`
	Runtime   Runtime              `yaml:"runtime"`
	Providers map[string]*Provider `yaml:"providers"`
	Pipeline  Pipeline             `yaml:"pipeline"`
	VAD       VAD                  `yaml:"vad"`
	Gateway   Gateway              `yaml:"gateway"`
	// Transports configures the live transports of `rspp serve`.
	Transports Transports `yaml:"transports"`
	// Timeline is the recording level and writer of the timeline.
	Timeline Timeline `yaml:"timeline"`
	// Authority and Budgets: authority.go, budgets.go.
	Authority Authority `yaml:"authority"`
	Budgets   Budgets   `yaml:"budgets"`
	// Admission bounds sessions and turns (scale.go).
	Admission Admission `yaml:"admission"`

	// Path is the file it was loaded from; Dir its directory (relative
	// paths in the file are relative to Dir).
	Path string `yaml:"-"`
	Dir  string `yaml:"-"`
}

// Runtime holds process-level settings.
type Runtime struct {
	// StateDir holds plugin socket dirs and scratch dirs (default
	// $TMPDIR/rspp); stale entries of dead runs are swept on start.
	StateDir string `yaml:"state_dir"`
	// AdminSocket is the unix socket of the admin API (default
	// StateDir/admin.sock: one serving runtime per state dir).
	AdminSocket string `yaml:"admin_socket"`
	// TickInterval is how often sessions check deadlines (default 20ms).
	TickInterval Duration `yaml:"tick_interval"`
	// Isolation: "auto" (default: cgroup envelopes + sandbox entry when
	// running as root with cgroups, plain processes otherwise; a tenant
	// profile then refuses to start), "on" (required) or "off".
	Isolation string `yaml:"isolation"`
	// PluginChannel secures the connection to every plugin: "peercred"
	// (default: plaintext gRPC on the instance's private unix socket, each
	// end checking the other's SO_PEERCRED) or "mtls" (go-plugin's
	// AutoMTLS on top, at about four times the CPU of a plugin start).
	PluginChannel string `yaml:"plugin_channel"`
	// KillGrace is how long a cancelled invocation may run on before its
	// instance is killed as hung and counted as a crash (default 2s).
	KillGrace Duration `yaml:"kill_grace"`
	// DrainTimeout bounds how long an old pool keeps serving in-flight
	// turns after a hot upgrade (default 60s).
	DrainTimeout Duration `yaml:"drain_timeout"`
}

// Restart is a provider's OTP-style restart intensity: at most Intensity
// restarts within Period, each after a doubling backoff with jitter; past
// it the provider's circuit opens (unavailable) for Cooldown.
type Restart struct {
	Intensity  int      `yaml:"intensity"`   // default 5
	Period     Duration `yaml:"period"`      // default 30s
	Backoff    Duration `yaml:"backoff"`     // first backoff, default 20ms
	BackoffMax Duration `yaml:"backoff_max"` // default 2s
	Jitter     float64  `yaml:"jitter"`      // 0..1, default 0.2
	Cooldown   Duration `yaml:"cooldown"`    // default 10s
}

// Provider is one plugin binary serving a provider or node.
type Provider struct {
	Kind         string   `yaml:"kind"`
	Binary       string   `yaml:"binary"`
	SHA256       string   `yaml:"sha256"`
	Args         []string `yaml:"args"`
	Instances    PoolSize `yaml:"instances"` // a number or {min, max} (scale.go); >= 2 ready gives a standby
	StartTimeout Duration `yaml:"start_timeout"`
	Restart      Restart  `yaml:"restart"`
	// HealthInterval is how often instances are health-checked (default
	// 2s, "off" is not a duration: use a negative one to disable);
	// HealthTimeout bounds one check (default 2s). Two failed checks in a
	// row kill the instance as hung.
	HealthInterval Duration `yaml:"health_interval"`
	HealthTimeout  Duration `yaml:"health_timeout"`
	// AcquireWait bounds how long an invocation waits for a ready instance
	// while a replacement starts (default 5s).
	AcquireWait Duration `yaml:"acquire_wait"`
	Profile     string   `yaml:"profile"`
	Tenant      string   `yaml:"tenant"`
	// Share says who shares an instance pool of a tenant-profile provider:
	// "tenant" (default: the sessions of one tenant share a pool, never
	// two tenants) or "session" (a pool per session). Trusted providers
	// keep one pool for every session and take no share key.
	Share string `yaml:"share"`
	// IdleTimeout is how long a tenant's (share: tenant) pool is kept with
	// no session bound to it and nothing in flight before it is stopped
	// (default 30s). A share: session pool stops with its session.
	IdleTimeout Duration `yaml:"idle_timeout"`
	Limits      Limits   `yaml:"limits"`
	// OutputBudget bounds what one invocation of this provider may emit;
	// past it the invocation fails as resource_limit/output_budget.
	OutputBudget OutputBudget `yaml:"output_budget"`
	// ReadPaths are host paths the plugin may read (its script, model
	// files): bind-mounted read-only into a tenant's sealed root, added to
	// nothing for trusted (which sees the host's files anyway). Relative
	// paths are relative to the config file.
	ReadPaths []string `yaml:"read_paths"`
	// User: "" (default) runs the plugin as an unprivileged uid of its own
	// when rspp is root; "root" keeps root (trusted only).
	User   string         `yaml:"user"`
	Config map[string]any `yaml:"config"`
	// Builtin names a node served inside the supervisor instead of a
	// binary (supervisor/builtin; exactly one of the two): its kind comes
	// from the builtin, and process settings do not apply (builtin.go).
	Builtin string `yaml:"builtin"`

	// Filled by Load.
	Name       string `yaml:"-"`
	BinaryPath string `yaml:"-"` // absolute
	Checksum   []byte `yaml:"-"`
	ConfigJSON []byte `yaml:"-"`
}

// OutputBudget is a provider's per-invocation output budget. Sizes take
// "64KiB", "8MiB" or plain bytes; zero fields take the runtime defaults
// (externalnode.DefaultOutputBudget).
type OutputBudget struct {
	BytesPerSecond   ByteSize `yaml:"bytes_per_s"`
	EventsPerSecond  float64  `yaml:"events_per_s"`
	MaxEventBytes    ByteSize `yaml:"max_event_bytes"`
	MaxBytesInFlight ByteSize `yaml:"max_bytes_in_flight"`
}

// Budget is the budget for externalnode, defaults filled in.
func (b OutputBudget) Budget() externalnode.OutputBudget {
	return externalnode.OutputBudget{
		BytesPerSecond: float64(b.BytesPerSecond), EventsPerSecond: b.EventsPerSecond,
		MaxEventBytes: int(b.MaxEventBytes), MaxBytesInFlight: int64(b.MaxBytesInFlight),
	}.WithDefaults()
}

// ByteSize accepts a byte count with an optional binary unit in YAML.
type ByteSize int64

func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := units.RAMInBytes(s)
	if err != nil || v < 0 {
		return fmt.Errorf("line %d: bad size %q (want e.g. 65536, 64KiB, 8MiB)", n.Line, s)
	}
	*b = ByteSize(v)
	return nil
}

// Limits override the isolation profile's resource limits.
type Limits struct {
	MemoryMB int64   `yaml:"memory_mb"`
	CPU      float64 `yaml:"cpu"`
	Pids     int64   `yaml:"pids"`
}

// Pipeline is the graph.
type Pipeline struct {
	Nodes []Node `yaml:"nodes"`
	Edges []Edge `yaml:"edges"`
}

// Node is a graph node bound to a provider.
type Node struct {
	ID         string   `yaml:"id"`
	Provider   string   `yaml:"provider"`
	Timeout    Duration `yaml:"timeout"`
	OnFailure  string   `yaml:"on_failure"` // abort (default), retry, fallback, branch
	MaxRetries int      `yaml:"max_retries"`
	Fallback   string   `yaml:"fallback"`  // provider for on_failure: fallback
	Join       string   `yaml:"join"`      // all (default) or select
	BranchTo   string   `yaml:"branch_to"` // dormant node for on_failure: branch
	// Providers is the whole list when provider names several (Provider
	// is then its first); see providerlist.go.
	Providers []string `yaml:"-"`
	// Requires is what the node needs of its providers (requires.go).
	Requires Requires `yaml:"requires"`
}

// Edge connects nodes (or ingress/egress).
type Edge struct {
	From     string   `yaml:"from"`
	To       string   `yaml:"to"`
	Capacity int      `yaml:"capacity"`
	BlockFor Duration `yaml:"block_for"`
	Types    []string `yaml:"types"`
	Overflow string   `yaml:"overflow"` // shed (default) or degrade
}

// VAD tunes the kernel's voice activity detector.
type VAD struct {
	Disabled    bool     `yaml:"disabled"`
	ThresholdDB float64  `yaml:"threshold_db"`
	MinSpeech   Duration `yaml:"min_speech"`
	Hangover    Duration `yaml:"hangover"`
}

// Gateway holds Event ABI policies.
type Gateway struct {
	UnknownEvents string `yaml:"unknown_events"`
}

// Transports are the live transports `rspp serve` starts.
type Transports struct {
	WebSocket WebSocket `yaml:"websocket"`
}

// WebSocket is the WebSocket transport (transports/websocket). Zero
// values take the transport's defaults.
type WebSocket struct {
	// Listen is host:port of the page (/) and endpoint (/ws); "" is off
	// (the --listen flag overrides it).
	Listen string `yaml:"listen"`
	// AllowedOrigins are origin host patterns accepted besides the
	// server's own host.
	AllowedOrigins  []string `yaml:"allowed_origins"`
	MaxSessions     int      `yaml:"max_sessions"`
	MaxMessageBytes ByteSize `yaml:"max_message_bytes"`
	IdleTimeout     Duration `yaml:"idle_timeout"`
	PingInterval    Duration `yaml:"ping_interval"`
	// SendQueue bounds queued agent audio frames per connection.
	SendQueue int `yaml:"send_queue"`
}

// Load reads, parses and validates a config file.
func Load(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{File: path, Msg: err.Error()}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, &Error{File: path, Msg: err.Error()}
	}
	return Parse(raw, abs)
}

// Parse parses and validates config bytes as if loaded from path.
func Parse(raw []byte, path string) (*Config, error) {
	c := &Config{Path: path, Dir: filepath.Dir(path)}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true) // an unknown key is an error, not a silent no-op
	if err := dec.Decode(c); err != nil {
		return nil, &Error{File: path, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

var (
	kinds      = map[string]bool{"stt": true, "llm": true, "tts": true, "custom": true}
	profiles   = map[string]bool{"trusted": true, "tenant": true}
	onFailures = map[string]bool{"": true, "abort": true, "retry": true, "fallback": true, "branch": true}
	joins      = map[string]bool{"": true, "all": true, "select": true}
	overflows  = map[string]bool{"": true, "shed": true, "degrade": true}
	unknownEv  = map[string]bool{"": true, "reject": true, "drop": true, "pass": true}
	isolations = map[string]bool{"": true, "auto": true, "on": true, "off": true}
	shares     = map[string]bool{"tenant": true, "session": true}
)

func (c *Config) errf(key, format string, a ...any) error {
	return &Error{File: c.Path, Key: key, Msg: fmt.Sprintf(format, a...)}
}

func (c *Config) validate() error {
	if c.Version != 1 {
		return c.errf("version", "must be 1, got %d", c.Version)
	}
	if len(c.Providers) == 0 {
		return c.errf("providers", "at least one provider is required")
	}
	for _, name := range c.ProviderNames() {
		if err := c.validateProvider(name, c.Providers[name]); err != nil {
			return err
		}
	}
	if err := c.validatePipeline(); err != nil {
		return err
	}
	if err := c.validateBudgets(); err != nil {
		return err
	}
	if err := c.validateAuthority(); err != nil {
		return err
	}
	if !unknownEv[c.Gateway.UnknownEvents] {
		return c.errf("gateway.unknown_events", "must be reject, drop or pass, got %q", c.Gateway.UnknownEvents)
	}
	if c.VAD.ThresholdDB > 0 {
		return c.errf("vad.threshold_db", "must be <= 0 dBFS, got %v", c.VAD.ThresholdDB)
	}
	if c.Runtime.TickInterval < 0 {
		return c.errf("runtime.tick_interval", "must be positive")
	}
	if !isolations[c.Runtime.Isolation] {
		return c.errf("runtime.isolation", "must be auto, on or off, got %q", c.Runtime.Isolation)
	}
	if _, err := externalnode.ParseChannel(c.Runtime.PluginChannel); err != nil {
		return c.errf("runtime.plugin_channel", "%v", err)
	}
	if c.Runtime.KillGrace < 0 {
		return c.errf("runtime.kill_grace", "must be positive")
	}
	if c.Runtime.DrainTimeout < 0 {
		return c.errf("runtime.drain_timeout", "must be positive")
	}
	if err := c.validateTimeline(); err != nil {
		return err
	}
	if err := c.validateAdmission(); err != nil {
		return err
	}
	return c.validateWebSocket()
}

func (c *Config) validateWebSocket() error {
	ws := c.Transports.WebSocket
	if ws.Listen != "" {
		if _, port, err := net.SplitHostPort(ws.Listen); err != nil || port == "" {
			return c.errf("transports.websocket.listen", "must be host:port, got %q", ws.Listen)
		}
	}
	switch {
	case ws.MaxSessions < 0:
		return c.errf("transports.websocket.max_sessions", "must be positive")
	case ws.MaxMessageBytes < 0 || ws.MaxMessageBytes > 0 && ws.MaxMessageBytes < 1024:
		return c.errf("transports.websocket.max_message_bytes", "must be at least 1KiB (an audio frame is 640 bytes), got %d", ws.MaxMessageBytes)
	case ws.IdleTimeout < 0:
		return c.errf("transports.websocket.idle_timeout", "must be positive")
	case ws.PingInterval < 0:
		return c.errf("transports.websocket.ping_interval", "must be positive")
	case ws.SendQueue < 0:
		return c.errf("transports.websocket.send_queue", "must be positive")
	}
	return nil
}

func (c *Config) validateBudget(key string, b OutputBudget) error {
	switch {
	case b.EventsPerSecond < 0:
		return c.errf(key+".events_per_s", "must not be negative, got %v", b.EventsPerSecond)
	case b.MaxEventBytes > externalnode.MaxMessageBytes:
		return c.errf(key+".max_event_bytes", "must be at most the wire's %d bytes, got %d", externalnode.MaxMessageBytes, b.MaxEventBytes)
	case b.BytesPerSecond > 0 && int64(b.BytesPerSecond) < int64(b.Budget().MaxEventBytes):
		return c.errf(key+".bytes_per_s", "must allow at least one event of max_event_bytes (%d) a second, got %d", b.Budget().MaxEventBytes, b.BytesPerSecond)
	}
	return nil
}

func (c *Config) validateProvider(name string, p *Provider) error {
	key := "providers." + name
	if p == nil {
		return c.errf(key, "empty provider block")
	}
	p.Name = name
	if p.Builtin != "" {
		return c.validateBuiltin(key, p)
	}
	if !kinds[p.Kind] {
		return c.errf(key+".kind", "must be one of stt, llm, tts, custom, got %q", p.Kind)
	}
	if p.Binary == "" {
		return c.errf(key+".binary", "is required (or builtin: one of %s)", strings.Join(builtin.Names(), ", "))
	}
	p.BinaryPath = c.Resolve(p.Binary)
	st, err := os.Stat(p.BinaryPath)
	if err != nil {
		return c.errf(key+".binary", "%s: %v (run `make build` first?)", p.BinaryPath, errors.Unwrap(err))
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return c.errf(key+".binary", "%s is not an executable file", p.BinaryPath)
	}
	if p.SHA256 != "" {
		sum, err := hex.DecodeString(p.SHA256)
		if err != nil || len(sum) != 32 {
			return c.errf(key+".sha256", "must be 64 hex digits")
		}
		p.Checksum = sum
	}
	if p.StartTimeout < 0 {
		return c.errf(key+".start_timeout", "must be positive")
	}
	if p.Profile == "" {
		p.Profile = "trusted"
	}
	if !profiles[p.Profile] {
		return c.errf(key+".profile", "must be trusted or tenant, got %q", p.Profile)
	}
	if err := c.validateInstances(key, p); err != nil {
		return err
	}
	if err := c.validateBudget(key+".output_budget", p.OutputBudget); err != nil {
		return err
	}
	switch {
	case p.Profile == "tenant" && p.Share == "":
		p.Share = "tenant"
	case p.Profile == "tenant" && !shares[p.Share]:
		return c.errf(key+".share", "must be tenant or session, got %q", p.Share)
	case p.Profile != "tenant" && p.Share != "":
		return c.errf(key+".share", "applies to profile tenant only (a %s provider has one pool for every session)", p.Profile)
	}
	if p.IdleTimeout < 0 {
		return c.errf(key+".idle_timeout", "must not be negative")
	}
	switch p.User {
	case "":
	case "root":
		if p.Profile != "trusted" {
			return c.errf(key+".user", "root is only for profile trusted (a tenant runs in a user namespace mapped to an unprivileged uid)")
		}
	default:
		return c.errf(key+".user", "must be empty (an unprivileged uid per instance) or root, got %q", p.User)
	}
	for i, rp := range p.ReadPaths {
		if rp == "" {
			return c.errf(fmt.Sprintf("%s.read_paths[%d]", key, i), "must not be empty")
		}
		p.ReadPaths[i] = c.Resolve(rp)
		if _, err := os.Stat(p.ReadPaths[i]); err != nil {
			return c.errf(fmt.Sprintf("%s.read_paths[%d]", key, i), "%s: %v", p.ReadPaths[i], errors.Unwrap(err))
		}
	}
	r := p.Restart
	switch {
	case r.Intensity < 0:
		return c.errf(key+".restart.intensity", "must not be negative")
	case r.Period < 0, r.Backoff < 0, r.BackoffMax < 0, r.Cooldown < 0:
		return c.errf(key+".restart", "durations must not be negative")
	case r.Jitter < 0 || r.Jitter > 1:
		return c.errf(key+".restart.jitter", "must be within 0..1, got %v", r.Jitter)
	}
	if p.HealthTimeout < 0 || p.AcquireWait < 0 {
		return c.errf(key, "health_timeout and acquire_wait must not be negative")
	}
	if p.Limits.MemoryMB < 0 || p.Limits.CPU < 0 || p.Limits.Pids < 0 {
		return c.errf(key+".limits", "limits must not be negative")
	}
	raw, err := json.Marshal(p.Config)
	if err != nil {
		return c.errf(key+".config", "cannot encode: %v", err)
	}
	if p.Config == nil {
		raw = nil
	}
	p.ConfigJSON = raw
	return nil
}

func (c *Config) validatePipeline() error {
	if len(c.Pipeline.Nodes) == 0 {
		return c.errf("pipeline.nodes", "at least one node is required")
	}
	seen := map[string]bool{}
	for i, n := range c.Pipeline.Nodes {
		key := fmt.Sprintf("pipeline.nodes[%d]", i)
		if n.ID == "" || n.ID == kernel.Ingress || n.ID == kernel.Egress {
			return c.errf(key+".id", "must be set and not %q or %q", kernel.Ingress, kernel.Egress)
		}
		if seen[n.ID] {
			return c.errf(key+".id", "duplicate node id %q", n.ID)
		}
		seen[n.ID] = true
		if _, ok := c.Providers[n.Provider]; !ok {
			return c.errf(key+".provider", "unknown provider %q (known: %s)", n.Provider, strings.Join(c.ProviderNames(), ", "))
		}
		if err := c.validateProviderList(i); err != nil {
			return err
		}
		if err := c.validateRequires(i); err != nil {
			return err
		}
		n = c.Pipeline.Nodes[i]
		if !onFailures[n.OnFailure] {
			return c.errf(key+".on_failure", "must be abort, retry, fallback or branch, got %q", n.OnFailure)
		}
		if !joins[n.Join] {
			return c.errf(key+".join", "must be all or select, got %q", n.Join)
		}
		if n.OnFailure == "fallback" && (n.Fallback != "" || len(n.Providers) < 2) {
			if _, ok := c.Providers[n.Fallback]; !ok {
				return c.errf(key+".fallback", "unknown provider %q", n.Fallback)
			}
		}
		if n.Timeout < 0 || n.MaxRetries < 0 {
			return c.errf(key, "timeout and max_retries must not be negative")
		}
	}
	if len(c.Pipeline.Edges) == 0 {
		return c.errf("pipeline.edges", "at least one edge is required")
	}
	for i, e := range c.Pipeline.Edges {
		key := fmt.Sprintf("pipeline.edges[%d]", i)
		if e.From != kernel.Ingress && !seen[e.From] {
			return c.errf(key+".from", "unknown node %q", e.From)
		}
		if e.To != kernel.Egress && !seen[e.To] {
			return c.errf(key+".to", "unknown node %q", e.To)
		}
		if e.Capacity < 0 || e.BlockFor < 0 {
			return c.errf(key, "capacity and block_for must not be negative")
		}
		if !overflows[e.Overflow] {
			return c.errf(key+".overflow", "must be shed or degrade, got %q", e.Overflow)
		}
	}
	// The kernel checks the rest (cycles, reachability) with its own typed
	// errors; surface them under the pipeline key.
	if err := kernel.CheckGraph(c.Graph()); err != nil {
		return c.errf("pipeline", "%v", err)
	}
	return nil
}

// ProviderNames lists provider names in a stable order.
func (c *Config) ProviderNames() []string {
	names := make([]string, 0, len(c.Providers))
	for n := range c.Providers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Resolve makes a path from the file absolute (relative to Dir).
func (c *Config) Resolve(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.Dir, p)
}

// Graph is the pipeline as the kernel wants it.
func (c *Config) Graph() kernel.GraphSpec {
	var g kernel.GraphSpec
	for _, n := range c.Pipeline.Nodes {
		kind := ""
		if p := c.Providers[n.Provider]; p != nil {
			kind = p.Kind
		}
		g.Nodes = append(g.Nodes, kernel.NodeSpec{
			ID: n.ID, Kind: kind, Provider: n.Provider, Timeout: time.Duration(n.Timeout),
			OnFailure: n.OnFailure, MaxRetries: n.MaxRetries, Fallback: n.Fallback, Join: n.Join, BranchTo: n.BranchTo,
			Providers: n.Providers, Requires: c.kernelRequires(n),
		})
	}
	for _, e := range c.Pipeline.Edges {
		es := kernel.EdgeSpec{From: e.From, To: e.To, Capacity: e.Capacity, BlockFor: time.Duration(e.BlockFor), Overflow: e.Overflow}
		for _, t := range e.Types {
			es.Types = append(es.Types, eventabi.Type(t))
		}
		g.Edges = append(g.Edges, es)
	}
	return g
}

// KernelVAD is the VAD block as the kernel wants it.
func (c *Config) KernelVAD() kernel.VADConfig {
	return kernel.VADConfig{Disabled: c.VAD.Disabled, ThresholdDB: c.VAD.ThresholdDB, MinSpeech: time.Duration(c.VAD.MinSpeech), Hangover: time.Duration(c.VAD.Hangover)}
}

// NodeBudget is the output budget of the provider serving node id (the
// defaults for an unknown node).
func (c *Config) NodeBudget(node string) externalnode.OutputBudget {
	for _, n := range c.Pipeline.Nodes {
		if n.ID == node {
			if p := c.Providers[n.Provider]; p != nil {
				return p.OutputBudget.Budget()
			}
		}
	}
	return externalnode.DefaultOutputBudget
}
