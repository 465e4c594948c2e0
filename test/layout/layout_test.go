// Package layout checks the house rules of the module's package graph:
// which room may import which. The rules are docs/architecture.md's arrows;
// a package importing against them fails this test with the path of
// imports that breaks the rule.
package layout

import (
	"bytes"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/rspp/rspp"

// rule: a package matching From must not depend (directly or through
// other packages of the module) on a package matching To, unless that
// package also matches an Except prefix. Patterns are module-relative: a
// trailing "/..." matches the package and everything below it.
type rule struct {
	From, To string
	Except   []string
	Why      string
}

var rules = []rule{
	{From: "kernel/...", To: "...", Except: []string{"kernel/...", "proto/..."},
		Why: "the kernel does no I/O: it depends on nothing of the module but kernel/... and proto"},
	{From: "supervisor/...", To: "providers/...", Why: "the supervisor hosts providers as processes; it never links one"},
	{From: "cmd/...", To: "providers/...", Why: "no command links a provider: providers are their own binaries"},
	{From: "externalnode/...", To: "providers/...", Why: "the plugin boundary and its kit serve every node alike"},
	{From: "transports/...", To: "supervisor/...", Why: "transports are driven by the supervisor, never the other way"},
	{From: "externalnode/...", To: "supervisor/...", Why: "externalnode is the boundary the supervisor stands on"},
	{From: "isolation/...", To: "...", Except: []string{"isolation/..."}, Why: "isolation is a leaf: envelopes and sandboxes know no runtime"},
	{From: "supervisor", To: "supervisor/load/...", Why: "load drives the runtime; the runtime does not know its harness"},
	{From: "supervisor", To: "supervisor/app/...", Why: "the applications serve on the runtime, not the reverse"},
	{From: "supervisor", To: "supervisor/admin/...", Why: "the admin server calls the runtime, not the reverse"},
	{From: "supervisor/pool/...", To: "supervisor", Why: "pools know nothing of the runtime that binds them"},
	{From: "supervisor/session/...", To: "supervisor", Why: "the session driver is reached through its interfaces"},
	{From: "supervisor/session/...", To: "transports/...", Why: "the session driver is reached through its interfaces"},
	{From: "providers/...", To: "supervisor/...", Why: "a provider is a plugin: it speaks the boundary, not the host"},
	{From: "supervisor/builtin/...", To: "supervisor/...", Except: []string{"supervisor/builtin/..."}, Why: "builtin nodes are opened through the session driver's interfaces: they know no runtime, pool or session"},
}

// graph is the module's packages and their direct in-module imports
// (test files excluded: the rules are about what ships).
type graph map[string][]string

func loadGraph(t *testing.T) graph {
	t.Helper()
	cmd := exec.Command("go", "list", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", module+"/...")
	cmd.Dir = "../.."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	g := graph{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		pkg, ok := rel(f[0])
		if !ok {
			continue
		}
		g[pkg] = nil
		for _, imp := range f[1:] {
			if r, ok := rel(imp); ok {
				g[pkg] = append(g[pkg], r)
			}
		}
	}
	return g
}

// rel is path relative to the module, ok false for a package outside it.
func rel(path string) (string, bool) {
	return strings.CutPrefix(path, module+"/")
}

func match(pattern, pkg string) bool {
	if pattern == "..." {
		return true
	}
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return pkg == base || strings.HasPrefix(pkg, base+"/")
	}
	return pkg == pattern
}

func matchAny(patterns []string, pkg string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool { return match(p, pkg) })
}

// violations lists, per rule, each package that breaks it with the chain
// of imports from it to the forbidden package (shortest, breadth first).
func violations(g graph, rules []rule) []string {
	var out []string
	pkgs := make([]string, 0, len(g))
	for p := range g {
		pkgs = append(pkgs, p)
	}
	slices.Sort(pkgs)
	for _, r := range rules {
		for _, from := range pkgs {
			if !match(r.From, from) {
				continue
			}
			if chain := forbiddenPath(g, from, r); chain != nil {
				to := r.To
				if to == "..." {
					to = "anything but " + strings.Join(r.Except, ", ")
				}
				out = append(out, fmt.Sprintf("%s must not depend on %s (%s): %s", from, to, r.Why, strings.Join(chain, " -> ")))
			}
		}
	}
	return out
}

func forbiddenPath(g graph, from string, r rule) []string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, imp := range g[p] {
			if _, seen := prev[imp]; seen {
				continue
			}
			prev[imp] = p
			if match(r.To, imp) && !matchAny(r.Except, imp) {
				chain := []string{imp}
				for x := p; x != ""; x = prev[x] {
					chain = append([]string{x}, chain...)
				}
				return chain
			}
			queue = append(queue, imp)
		}
	}
	return nil
}

func TestImportDirections(t *testing.T) {
	g := loadGraph(t)
	for _, must := range []string{"kernel", "supervisor", "supervisor/pool", "cmd/runtime", "providers/espeak"} {
		if _, ok := g[must]; !ok {
			t.Fatalf("package %s not in the module's graph: the rules below would check nothing", must)
		}
	}
	for _, v := range violations(g, rules) {
		t.Error(v)
	}
}

// The checker itself catches a violation: the real graph with one
// forbidden import added must fail each kind of rule.
func TestImportDirectionsCatchAViolation(t *testing.T) {
	g := loadGraph(t)
	before := violations(g, rules)
	for _, bad := range [][2]string{
		{"kernel", "supervisor/session"},
		{"kernel/record", "externalnode"},
		{"supervisor/pool", "providers/espeak/synth"},
		{"cmd/runtime", "providers/flite/voice"},
		{"supervisor/pool", "supervisor"},
		{"supervisor/builtin", "supervisor/pool"},
	} {
		h := graph{}
		for k, v := range g {
			h[k] = slices.Clone(v)
		}
		h[bad[0]] = append(h[bad[0]], bad[1])
		var added []string
		for _, v := range violations(h, rules) {
			if !slices.Contains(before, v) {
				added = append(added, v)
			}
		}
		if len(added) == 0 {
			t.Errorf("%s importing %s went unnoticed", bad[0], bad[1])
		} else {
			t.Logf("%s importing %s: %s", bad[0], bad[1], added[0])
		}
	}
}
