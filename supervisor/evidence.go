package supervisor

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"

	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/kernel/runner"
	"github.com/rspp/rspp/supervisor/config"
)

// TypeTimelineHeader is the first record of a timeline file: the config it
// was recorded under, with one digest per provider (ProviderDigests).
const TypeTimelineHeader = "timeline_header"

// CreateTimeline creates the JSON Lines timeline at path with the
// config's writer options and writes its header. tees also receive every
// record.
func (rt *Runtime) CreateTimeline(path string, tees ...runner.Timeline) (*runner.JSONLTimeline, error) {
	jl, err := runner.CreateJSONLWith(path, runner.WriterOptions{BufferBytes: rt.cfg.TimelineBuffer(), FlushEvery: rt.cfg.TimelineFlush()}, tees...)
	if err != nil {
		return nil, err
	}
	jl.Append(TimelineHeader(rt.cfg))
	return jl, nil
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
		block, _ := json.Marshal(p.Config) // maps marshal with sorted keys
		args, _ := json.Marshal(p.Args)
		h.Write([]byte(p.Kind + "\x00"))
		h.Write(args)
		h.Write(block)
		var files []string
		var walk func(v any)
		walk = func(v any) {
			switch v := v.(type) {
			case string:
				path := v
				if !filepath.IsAbs(path) {
					path = filepath.Join(cfg.Dir, path)
				}
				if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() {
					files = append(files, path)
				}
			case map[string]any:
				for _, x := range v {
					walk(x)
				}
			case []any:
				for _, x := range v {
					walk(x)
				}
			}
		}
		walk(p.Config)
		sort.Strings(files)
		for _, f := range files {
			if b, err := os.ReadFile(f); err == nil {
				sum := sha256.Sum256(b)
				h.Write(sum[:])
			}
		}
		out[name] = hex.EncodeToString(h.Sum(nil))[:16]
	}
	return out
}

// BindingFor is the binding a new turn of a session of tenant would
// freeze for provider now.
func (rt *Runtime) BindingFor(provider, tenant, session string) (kernel.Binding, bool) {
	return rt.binding(provider, tenant, session)
}
