package bench

import (
	"os"
	"strings"
	"testing"
)

func parseFile(t *testing.T, path string) map[string]*GoPackage {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := ParseGoBench(f)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func parseString(t *testing.T, s string) map[string]*GoPackage {
	t.Helper()
	got, err := ParseGoBench(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// The fixtures are real `go test -bench` output of a probe module: package a
// has a skipped, a failing, a printing, a logging and a sub-benchmark;
// package b one plain benchmark; package c no test files.
func checkProbe(t *testing.T, got map[string]*GoPackage, runs int) {
	t.Helper()
	if len(got) != 2 || got["probe/a"] == nil || got["probe/b"] == nil {
		t.Fatalf("packages = %v, want probe/a and probe/b only", keys(got))
	}
	a, b := got["probe/a"], got["probe/b"]
	if a.Status != "fail" || b.Status != "ok" {
		t.Fatalf("status a=%q b=%q", a.Status, b.Status)
	}
	if !strings.Contains(a.Failed["BenchmarkFail"], "boom") {
		t.Fatalf("failed = %q", a.Failed)
	}
	for _, name := range []string{"BenchmarkPrint", "BenchmarkSub/sessions=1", "BenchmarkSub/sessions=100", "BenchmarkLog"} {
		r := a.Benchmarks[name]
		if r == nil {
			t.Fatalf("%s missing; have %v", name, a.Benchmarks)
		}
		if r.Procs != 2 || r.Iterations != 10 || r.Runs != runs {
			t.Fatalf("%s = %+v", name, r)
		}
	}
	if len(a.Benchmarks) != 4 {
		t.Fatalf("benchmarks of a = %d, want 4", len(a.Benchmarks))
	}
	if v := a.Benchmarks["BenchmarkPrint"].Metrics["p50-us"]; v != 1.5 {
		t.Fatalf("p50-us = %v", v)
	}
	if v := a.Benchmarks["BenchmarkSub/sessions=100"].Metrics["x/bare-p50"]; v != 2 {
		t.Fatalf("x/bare-p50 = %v", v)
	}
	if _, ok := a.Benchmarks["BenchmarkSub/sessions=1"].Metrics["ns/op"]; ok {
		t.Fatal("ns/op reported though the benchmark zeroed it")
	}
	if v, ok := a.Benchmarks["BenchmarkLog"].Metrics["allocs/op"]; !ok || v != 1 {
		t.Fatalf("allocs/op = %v %v", v, ok)
	}
	if r := b.Benchmarks["BenchmarkB"]; r == nil || r.Metrics["ns/op"] <= 0 {
		t.Fatalf("BenchmarkB = %+v", r)
	}
}

func TestParseGoBenchPlain(t *testing.T) {
	got := parseFile(t, "testdata/gobench-plain.txt")
	checkProbe(t, got, 1)
	// Without -v a skip prints nothing: it must not appear as a result.
	if len(got["probe/a"].Skipped) != 0 {
		t.Fatalf("skipped = %v", got["probe/a"].Skipped)
	}
}

func TestParseGoBenchVerboseCount2(t *testing.T) {
	got := parseFile(t, "testdata/gobench-verbose-count2.txt")
	checkProbe(t, got, 2)
	if r := got["probe/a"].Skipped["BenchmarkSkip"]; !strings.Contains(r, "needs root: because") {
		t.Fatalf("skip reason = %q", r)
	}
}

func TestParseGoBenchMedianOverRuns(t *testing.T) {
	got := parseString(t, `pkg: x/k
BenchmarkCost/sessions=1000-2   	 100	 30 ns/op	 9 p99-us
BenchmarkCost/sessions=1000-2   	 300	 10 ns/op	 1 p99-us
BenchmarkCost/sessions=1000-2   	 200	 20 ns/op	 5 p99-us
BenchmarkEven-2	10	1 ns/op
BenchmarkEven-2	10	4 ns/op
ok  	x/k	1.0s
`)
	c := got["x/k"].Benchmarks["BenchmarkCost/sessions=1000"]
	if c == nil || c.Runs != 3 || c.Iterations != 200 || c.Metrics["ns/op"] != 20 || c.Metrics["p99-us"] != 5 {
		t.Fatalf("cost = %+v", c)
	}
	if e := got["x/k"].Benchmarks["BenchmarkEven"]; e.Metrics["ns/op"] != 2.5 {
		t.Fatalf("even median = %v", e.Metrics["ns/op"])
	}
}

func TestParseGoBenchEdgeCases(t *testing.T) {
	got := parseString(t, `# x/broken
broken/a.go:3:1: syntax error
FAIL	x/broken [build failed]
?   	x/none	[no test files]
ok  	x/nobench	0.01s
goos: linux
pkg: x/cut
BenchmarkHalf-2   	 50	 7.5 ns/op
BenchmarkLogged-2 	some text the benchmark printed
    10 apples are not figures
      40	 3 ns/op
panic: test timed out after 10m0s
`)
	if p := got["x/broken"]; p == nil || p.Status != "build failed" {
		t.Fatalf("broken = %+v", p)
	}
	if got["x/none"] != nil || got["x/nobench"] != nil {
		t.Fatalf("packages without benchmarks kept: %v", keys(got))
	}
	cut := got["x/cut"]
	if cut == nil || cut.Status != "incomplete" {
		t.Fatalf("cut = %+v", cut)
	}
	if h := cut.Benchmarks["BenchmarkHalf"]; h == nil || h.Metrics["ns/op"] != 7.5 || h.Iterations != 50 {
		t.Fatalf("half = %+v", h)
	}
	if l := cut.Benchmarks["BenchmarkLogged"]; l == nil || l.Iterations != 40 || l.Metrics["ns/op"] != 3 {
		t.Fatalf("logged = %+v", l)
	}
}

func TestParseGoBenchEmpty(t *testing.T) {
	if got := parseString(t, ""); len(got) != 0 {
		t.Fatalf("got %v", got)
	}
}

func TestSplitProcs(t *testing.T) {
	for _, c := range []struct {
		in    string
		name  string
		procs int
	}{
		{"BenchmarkX-2", "BenchmarkX", 2},
		{"BenchmarkX/sessions=100-16", "BenchmarkX/sessions=100", 16},
		{"BenchmarkX", "BenchmarkX", 0},
		{"BenchmarkX/a-b", "BenchmarkX/a-b", 0},
	} {
		if n, p := splitProcs(c.in); n != c.name || p != c.procs {
			t.Errorf("splitProcs(%q) = %q, %d", c.in, n, p)
		}
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
