package supervisor

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/kernel/record"
	"github.com/rspp/rspp/supervisor/config"
	"github.com/rspp/rspp/supervisor/session"
)

// TypeTimelineHeader is the first record of a timeline file: the config it
// was recorded under, with one digest per provider (ProviderDigests).
const TypeTimelineHeader = "timeline_header"

// CreateTimeline creates the JSON Lines timeline at path with the
// config's writer options and writes its header. tees also receive every
// record.
func (rt *Runtime) CreateTimeline(path string, tees ...session.Timeline) (*session.JSONLTimeline, error) {
	jl, err := session.CreateJSONLWith(path, session.WriterOptions{BufferBytes: rt.cfg.TimelineBuffer(), FlushEvery: rt.cfg.TimelineFlush()}, tees...)
	if err != nil {
		return nil, err
	}
	jl.Append(TimelineHeader(rt.cfg))
	rt.evidence.file.Store(true)
	if rt.state != nil {
		// Should this process die, the next runtime to sweep its run dir
		// ends the turns it leaves open in this file (seal.go).
		if err := rt.state.noteTimeline(path); err != nil {
			_ = jl.Close()
			return nil, fmt.Errorf("timeline %s: %w", path, err)
		}
	}
	return jl, nil
}

// evidenceState is what the runtime knows of its timeline file.
type evidenceState struct {
	file atomic.Bool // a timeline file was created: inputs are worth recording
}

// recording is a new session's recording policy: the config's, but level
// control while the runtime writes no timeline file (the inputs would go
// nowhere: no copy of every audio frame for nothing).
func (rt *Runtime) recording(cfg *config.Config) record.Policy {
	p := cfg.Recording()
	if !rt.evidence.file.Load() {
		p.Level = kernel.LevelControl
	}
	return p
}

// TimelineHeader is the header record of a timeline recorded under cfg.
func TimelineHeader(cfg *config.Config) kernel.TimelineRecord {
	attrs := map[string]string{"config": cfg.Path, "level": cfg.Recording().Level}
	for name, d := range ProviderDigests(cfg) {
		attrs["provider."+name] = d
	}
	return kernel.TimelineRecord{Type: TypeTimelineHeader, Attrs: attrs}
}

// ProviderDigests fingerprints what decides each provider's outputs: its
// kind, args and config block, and the content of every file the block
// names (a grammar, a reply table). The binary's own version is in each
// turn's bindings. A provider whose digest is unchanged can be played
// back from its recorded outputs.
func ProviderDigests(cfg *config.Config) map[string]string {
	out := map[string]string{}
	for name, p := range cfg.Providers {
		h := sha256.New()
		// A string naming a file counts by the file's content, not its
		// path: a copied config with the same tables has the same digest.
		var canon func(v any) any
		canon = func(v any) any {
			switch v := v.(type) {
			case string:
				path := v
				if !filepath.IsAbs(path) {
					path = filepath.Join(cfg.Dir, path)
				}
				if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() {
					if b, err := os.ReadFile(path); err == nil {
						sum := sha256.Sum256(b)
						return "file:" + hex.EncodeToString(sum[:])
					}
				}
				return v
			case map[string]any:
				m := make(map[string]any, len(v))
				for k, x := range v {
					m[k] = canon(x)
				}
				return m
			case []any:
				l := make([]any, len(v))
				for i, x := range v {
					l[i] = canon(x)
				}
				return l
			}
			return v
		}
		block, _ := json.Marshal(canon(p.Config)) // maps marshal with sorted keys
		args, _ := json.Marshal(p.Args)
		h.Write([]byte(p.Kind + "\x00"))
		h.Write(args)
		h.Write(block)
		out[name] = hex.EncodeToString(h.Sum(nil))[:16]
	}
	return out
}

// BindingFor is the binding a new turn of a session of tenant would
// freeze for provider now.
func (rt *Runtime) BindingFor(provider, tenant, session string) (kernel.Binding, bool) {
	return rt.binding(provider, tenant, session)
}
