package kernel

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rspp/rspp/kernel/eventabi"
)

// Golden trace tests: testdata/traces/NAME.trace is a script of inputs,
// NAME.golden the effects the kernel must produce for it. Regenerate with
//
//	go test ./kernel -run TestGoldenTraces -update
//
// and review the diff; never edit a .golden by hand.
var update = flag.Bool("update", false, "rewrite golden trace files")

func TestGoldenTraces(t *testing.T) {
	scripts, _ := filepath.Glob("testdata/traces/*.trace")
	if len(scripts) == 0 {
		t.Fatal("no traces")
	}
	for _, path := range scripts {
		name := strings.TrimSuffix(filepath.Base(path), ".trace")
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			got := runScript(t, string(src))
			golden := strings.TrimSuffix(path, ".trace") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Fatalf("effects differ from %s (run with -update and review the diff):\n%s", golden, firstDiff(string(want), got))
			}
		})
	}
}

func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return fmt.Sprintf("line %d\nwant: %s\n got: %s", i+1, a, b)
		}
	}
	return ""
}

// runScript interprets a trace script and renders the effects, one per
// line, each input echoed as a "> " line before the effects it caused.
func runScript(t *testing.T, src string) string {
	var lines []string
	var h *harness
	hold := false
	mutators := []func(*SessionConfig){}
	for ln, raw := range strings.Split(src, "\n") {
		f := fields(raw)
		if len(f) == 0 {
			continue
		}
		fail := func(msg string) { t.Fatalf("line %d %q: %s", ln+1, raw, msg) }
		if h == nil && f[0] != "graph" && f[0] != "config" {
			h = newHarness(t, func(c *SessionConfig) {
				for _, m := range mutators {
					m(c)
				}
			})
			lines = append(lines, render(h.effects)...)
		}
		var errs []string
		mark := 0
		if h != nil {
			mark = len(h.effects)
		}
		switch f[0] {
		case "graph":
			g := map[string]GraphSpec{"linear": linearGraph(), "diamond": diamondGraph(), "select": fuzzGraphs()[2], "chain": fuzzGraphs()[0]}[f[1]]
			mutators = append(mutators, func(c *SessionConfig) { c.Graph = g })
			continue
		case "config":
			mutators = append(mutators, configMutator(f[1:], fail))
			continue
		case "speak", "silence":
			mk := loud
			if f[0] == "silence" {
				mk = quiet
			}
			h.frames(atoi(f[1]), mk)
		case "emit", "emit*10":
			ev := text(eventabi.Type(f[2]), strings.Join(f[3:], " "))
			if f[2] == string(eventabi.TypeAudioFrame) {
				ev = loud()
			} else if f[2] == string(eventabi.TypeMetric) {
				ev = eventabi.Event{Type: eventabi.TypeMetric}
			}
			for range repeat(f[0]) {
				if err := h.s.OnNodeEvent(scriptInv(h, f[1]), ev); err != nil {
					errs = append(errs, "  error: "+err.Error())
				}
			}
			if !hold {
				h.drain()
			}
		case "hold": // stop draining Ready after each input (queues build up)
			hold = true
		case "drain":
			hold = false
			h.drain()
		case "end":
			var err error
			detail := strings.Join(f[3:], " ")
			switch f[2] {
			case "ok":
			case "crashed":
				err = ErrNodeCrashed
			case "failed":
				err = ErrNodeFailed
			default:
				fail("unknown end kind")
			}
			h.end(scriptInv(h, f[1]), err, detail)
		case "tick":
			d, err := time.ParseDuration(f[1])
			if err != nil {
				fail(err.Error())
			}
			h.clk.Advance(d)
			h.s.Tick()
			if !hold {
				h.drain()
			}
		case "cancel":
			target := ""
			if len(f) > 2 {
				target = f[2]
			}
			if err := h.s.Cancel(f[1], target, "script"); err != nil {
				fail(err.Error())
			}
			h.drain()
		case "close":
			h.s.Close(f[1])
			h.drain()
		default:
			fail("unknown command")
		}
		lines = append(lines, "> "+raw)
		lines = append(lines, errs...)
		lines = append(lines, render(h.effects[mark:])...)
	}
	return strings.Join(lines, "\n") + "\n"
}

// repeat is how many times an emit command repeats ("emit*10").
func repeat(cmd string) int {
	if _, n, ok := strings.Cut(cmd, "*"); ok {
		return atoi(n)
	}
	return 1
}

func configMutator(f []string, fail func(string)) func(*SessionConfig) {
	return func(c *SessionConfig) {
		for _, kv := range f {
			k, v, _ := strings.Cut(kv, "=")
			node, field, _ := strings.Cut(k, ".")
			for i := range c.Graph.Nodes {
				n := &c.Graph.Nodes[i]
				if n.ID != node {
					continue
				}
				switch field {
				case "on_failure":
					n.OnFailure = v
				case "max_retries":
					n.MaxRetries = atoi(v)
				case "fallback":
					n.Fallback = v
				default:
					fail("unknown config " + k)
				}
			}
		}
	}
}

// scriptInv resolves "node" (latest invocation) or "node#k" (k-th started).
func scriptInv(h *harness, ref string) string {
	node, k, indexed := strings.Cut(ref, "#")
	if !indexed {
		return h.inv(node)
	}
	n := atoi(k)
	for _, e := range h.effects {
		if st, ok := e.(StartInvocation); ok && st.Ref.NodeID == node {
			if n--; n == 0 {
				return st.Ref.InvocationID
			}
		}
	}
	return "missing-" + ref
}

func fields(line string) []string {
	if i := strings.IndexByte(line, '#'); i >= 0 && (i == 0 || line[i-1] == ' ') {
		line = line[:i]
	}
	return strings.Fields(line)
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		panic(err)
	}
	return n
}

// render prints effects compactly; runs of identical lines collapse to "xN".
func render(effs []Effect) []string {
	var out []string
	for _, e := range effs {
		l := renderOne(e)
		if n := len(out); n > 0 {
			prev, cnt := out[n-1], 1
			if i := strings.LastIndex(prev, " x"); i >= 0 {
				if c, err := strconv.Atoi(prev[i+2:]); err == nil {
					prev, cnt = prev[:i], c
				}
			}
			if prev == l {
				out[n-1] = fmt.Sprintf("%s x%d", l, cnt+1)
				continue
			}
		}
		out = append(out, l)
	}
	return out
}

func renderOne(e Effect) string {
	switch e := e.(type) {
	case Record:
		r := e.Record
		s := "record " + r.Type
		for _, kv := range [][2]string{{"turn", r.TurnID}, {"node", r.NodeID}, {"inv", r.InvocationID}, {"reason", r.Reason}} {
			if kv[1] != "" {
				s += fmt.Sprintf(" %s=%q", kv[0], kv[1])
			}
		}
		keys := make([]string, 0, len(r.Attrs))
		for k := range r.Attrs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			s += fmt.Sprintf(" %s=%q", k, r.Attrs[k])
		}
		return s
	case StartInvocation:
		return fmt.Sprintf("start %s node=%s turn=%s binding=%s@%s attempt=%d", e.Ref.InvocationID, e.Ref.NodeID, e.Ref.TurnID, e.Binding.Provider, e.Binding.Version, e.Attempt)
	case DeliverInput:
		if e.Event.Text != nil {
			return fmt.Sprintf("deliver %s %s from=%s text=%q", e.InvocationID, e.Event.Type, e.Event.NodeID, e.Event.Text.Text)
		}
		return fmt.Sprintf("deliver %s %s from=%s", e.InvocationID, e.Event.Type, e.Event.NodeID)
	case CloseInput:
		return "close_input " + e.InvocationID
	case CancelInvocation:
		return fmt.Sprintf("cancel %s reason=%q", e.InvocationID, e.Reason)
	case EgressEvent:
		return fmt.Sprintf("egress %s turn=%s from=%s", e.Event.Type, e.Event.TurnID, e.Event.NodeID)
	case FenceEgress:
		return fmt.Sprintf("fence turn=%s reason=%q", e.TurnID, e.Reason)
	case SessionClosed:
		return fmt.Sprintf("session_closed reason=%q", e.Reason)
	}
	return fmt.Sprintf("%T", e)
}
