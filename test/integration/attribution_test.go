package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rspp/rspp/providers/speechtest"
	"github.com/rspp/rspp/test/testenv"
)

// A tenant's node that allocates without end, run under the tenant
// profile through rspp: its envelope OOM-kills it, the turn it served
// aborts with one terminal, and the failure is attributed to that node and
// tenant as a resource-limit hit (not a generic crash) in the timeline, the
// traces and the metrics. rspp itself and its other plugins carry on.
func TestTenantOOMIsAttributedToNodeAndTenant(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: cgroup envelopes and the tenant sandbox (CI runs as root)")
	}
	speechtest.Require(t)
	hostile := hostileBin(t)
	// The sandboxed entry point (rspp itself) runs as an unprivileged uid:
	// it must be able to reach the binaries.
	if err := os.Chmod(bins.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r := newRun(t, "hello there", testenv.ConfigOptions{})
	root, _ := testenv.ModuleRoot()
	// First with the state dir as MkdirTemp made it (0700): the sandboxed
	// uid could not reach its socket, and rspp must say so up front.
	writeTenantConfig(t, r, root, hostile)
	r.start(t)
	if code := r.wait(t, 30*time.Second); code == 0 || !strings.Contains(r.stderr.String(), "cannot reach its socket under "+r.state) {
		t.Fatalf("exit %d; want a refusal naming %s\nstderr:\n%s", code, r.state, &r.stderr)
	}
	r.assertNothingLeft(t)
	if err := os.Chmod(r.state, 0o711); err != nil {
		t.Fatal(err)
	}
	r.stdout.Reset()
	r.stderr.Reset()
	traces, metrics := filepath.Join(r.dir, "traces.json"), filepath.Join(r.dir, "metrics.json")
	r.start(t, "--traces", traces, "--metrics-file", metrics)
	if code := r.wait(t, 90*time.Second); code != 0 {
		t.Fatalf("rspp exit %d\nstdout:\n%s\nstderr:\n%s", code, &r.stdout, &r.stderr)
	}
	recs := r.records(t)
	if err := testenv.CheckTerminals(recs); err != nil {
		t.Fatal(err)
	}
	var fail *testenv.Record
	for i := range recs {
		if recs[i].Type == "invocation_fail" && recs[i].NodeID == "guard" {
			fail = &recs[i]
		}
	}
	if fail == nil {
		t.Fatalf("no invocation_fail for node guard; stdout:\n%s", &r.stdout)
	}
	t.Logf("timeline: %s kind=%s", fail.Reason, fail.Attrs["kind"])
	if fail.Attrs["kind"] != "resource_limit" || !strings.Contains(fail.Reason, `tenant "acme"`) || !strings.Contains(strings.ToLower(fail.Reason), "oom") {
		t.Fatalf("guard's failure is not attributed as an OOM of tenant acme: kind=%q reason=%q", fail.Attrs["kind"], fail.Reason)
	}
	if reasons := abortsNaming(recs, "guard"); len(reasons) != 1 {
		t.Fatalf("want one turn_abort naming node guard, got %q", reasons)
	}
	// Contained to that node: the trusted STT plugin of the same turn was
	// cancelled with the turn, never failed.
	for _, rec := range recs {
		if rec.Type == "invocation_fail" && rec.NodeID != "guard" {
			t.Errorf("another node failed too: %+v", rec)
		}
	}
	tr, _ := os.ReadFile(traces)
	if !strings.Contains(string(tr), `"rspp.failure_kind","Value":{"Type":"STRING","Value":"resource_limit"}`) ||
		!strings.Contains(string(tr), `"rspp.node_tenant","Value":{"Type":"STRING","Value":"acme"}`) {
		t.Errorf("traces lack the attributed failure (node tenant acme, kind resource_limit)")
	}
	m, _ := os.ReadFile(metrics)
	if !strings.Contains(string(m), `"rspp.node.failures"`) || !strings.Contains(string(m), `"Value":"acme"`) || !strings.Contains(string(m), `"Value":"resource_limit"`) {
		t.Errorf("metrics lack rspp.node.failures{node=guard,tenant=acme,kind=resource_limit}:\n%.2000s", m)
	}
	r.assertNothingLeft(t)
}

// hostileBin builds test/hostile (once per test binary) next to the other
// binaries, so that the leftover checks see its processes.
func hostileBin(t *testing.T) string {
	t.Helper()
	hostile := filepath.Join(bins.Dir, "hostile")
	if _, err := os.Stat(hostile); err != nil {
		root, _ := testenv.ModuleRoot()
		cmd := exec.Command("go", "build", "-o", hostile, "./test/hostile")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build hostile node: %v\n%s", err, out)
		}
	}
	return hostile
}

// writeTenantConfig: STT (trusted) feeding a tenant node that runs the
// hostile memory bomb under a 64 MiB envelope.
func writeTenantConfig(t *testing.T, r *run, root, hostile string) {
	t.Helper()
	cfg := fmt.Sprintf(`version: 1
runtime: {state_dir: %s, isolation: "on"}
providers:
  pocketsphinx:
    kind: stt
    binary: %s
    config: {grammar: %s}
  guard:
    kind: custom
    binary: %s
    profile: tenant
    tenant: acme
    limits: {memory_mb: 64}
    config: {behaviour: memory}
pipeline:
  nodes:
    - {id: stt, provider: pocketsphinx, timeout: 15s}
    - {id: guard, provider: guard, timeout: 20s}
  edges:
    - {from: ingress, to: stt}
    - {from: stt, to: guard}
    - {from: guard, to: egress}
`, r.state, bins.Provider["pocketsphinx"], filepath.Join(root, "examples", "grammar.jsgf"), hostile)
	if err := os.WriteFile(r.cfg, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
}
