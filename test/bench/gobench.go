package bench

import (
	"bufio"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/perf/benchfmt"
)

// GoPackage is what one package's `go test -bench` output said.
type GoPackage struct {
	// Status is "ok", "fail", "build failed" or "incomplete" (the output
	// ended before the package's ok/FAIL line, e.g. a timeout panic).
	Status     string                  `json:"status"`
	Benchmarks map[string]*GoBenchmark `json:"benchmarks,omitempty"`
	// Skipped and Failed map a benchmark name to what it logged (the skip
	// reason, the failure), so a skip for want of root is visible.
	Skipped map[string]string `json:"skipped,omitempty"`
	Failed  map[string]string `json:"failed,omitempty"`
}

// GoBenchmark is one benchmark's result. With -count > 1 each figure is the
// median over the runs: it is robust to one run disturbed by the machine.
type GoBenchmark struct {
	Procs      int                `json:"procs,omitempty"` // GOMAXPROCS suffix of the name
	Runs       int                `json:"runs"`
	Iterations int64              `json:"iterations"`
	Metrics    map[string]float64 `json:"metrics"` // unit -> value: "ns/op", "p50-us", ...
}

var (
	// The start of a result line. Benchmarks that print to stdout split
	// it: the name comes first, the figures on a later line that starts
	// with whitespace.
	benchNameRe = regexp.MustCompile(`^(Benchmark\S*)`)
	procsRe     = regexp.MustCompile(`^(.+)-(\d+)$`)
	statusRe    = regexp.MustCompile(`^--- (SKIP|FAIL): (Benchmark\S*)`)
	// Package terminators: "ok  \tpkg\t1.2s", "FAIL\tpkg\t1.2s",
	// "FAIL\tpkg [build failed]", "?   \tpkg\t[no test files]".
	okRe   = regexp.MustCompile(`^ok\s+(\S+)`)
	failRe = regexp.MustCompile(`^FAIL\s+(\S+)(\s+\[build failed\])?`)
	noneRe = regexp.MustCompile(`^\?\s+(\S+)\s+\[no test files\]`)
)

// ParseGoBench reads the standard text output of `go test -bench` (with or
// without -v, one or many packages, any -count) and groups the results by
// package import path. Result lines are parsed by golang.org/x/perf's
// benchfmt; what that format leaves out is read here: package status
// lines (ok / FAIL / build failed), skip and failure reasons, and result
// lines split by a benchmark that printed to stdout. It knows no benchmark by name: whatever metrics a
// benchmark reports with b.ReportMetric show up under their unit. Packages
// that ran no benchmark are left out.
func ParseGoBench(r io.Reader) (map[string]*GoPackage, error) {
	p := &goBenchParser{out: make(map[string]*GoPackage)}
	p.reset()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024) // a benchmark may log long lines
	for sc.Scan() {
		p.line(sc.Text())
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	p.flush(p.pkg, "incomplete")
	return p.out, nil
}

// goBenchParser holds the block of the package being read. Results are
// attributed when the package's ok/FAIL line arrives, because without -v a
// failure is printed before the "pkg:" header.
type goBenchParser struct {
	out map[string]*GoPackage

	pkg     string // from the "pkg:" header, a fallback for a cut-off block
	runs    map[string]*benchRuns
	order   []string
	skipped map[string]string
	failed  map[string]string

	pendingName string   // a name whose figures come on a later line
	logged      []string // indented lines since the last unindented one
	logTo       func(string)
}

type benchRuns struct {
	procs   int
	iters   []float64
	metrics map[string][]float64
}

func (p *goBenchParser) reset() {
	p.pkg = ""
	p.runs = make(map[string]*benchRuns)
	p.order = nil
	p.skipped = make(map[string]string)
	p.failed = make(map[string]string)
	p.pendingName = ""
	p.logged = nil
	p.logTo = nil
}

func (p *goBenchParser) line(l string) {
	if strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t") {
		// Figures of a split result line, or a log line of a benchmark.
		if p.pendingName != "" {
			if _, iters, m, ok := parseResult(p.pendingName + " " + strings.TrimSpace(l)); ok {
				p.add(p.pendingName, iters, m)
				p.pendingName = ""
				return
			}
		}
		t := strings.TrimSpace(l)
		p.logged = append(p.logged, t)
		if p.logTo != nil {
			p.logTo(t)
		}
		return
	}
	logged := p.logged
	p.logged = nil
	p.logTo = nil
	switch {
	case strings.HasPrefix(l, "pkg: "):
		p.pkg = strings.TrimSpace(strings.TrimPrefix(l, "pkg: "))
	case statusRe.MatchString(l):
		m := statusRe.FindStringSubmatch(l)
		name, _ := splitProcs(m[2])
		into := p.skipped
		if m[1] == "FAIL" {
			into = p.failed
		}
		// With -v the reason was logged before this line; without -v it
		// follows it.
		into[name] = strings.Join(logged, "\n")
		p.logTo = func(t string) {
			if into[name] != "" {
				into[name] += "\n"
			}
			into[name] += t
		}
	case okRe.MatchString(l):
		p.flush(okRe.FindStringSubmatch(l)[1], "ok")
	case noneRe.MatchString(l):
		p.reset()
	case failRe.MatchString(l):
		m := failRe.FindStringSubmatch(l)
		status := "fail"
		if m[2] != "" {
			status = "build failed"
		}
		p.flush(m[1], status)
	case benchNameRe.MatchString(l):
		if name, iters, m, ok := parseResult(l); ok {
			p.add(name, iters, m)
			p.pendingName = ""
			return
		}
		// A name alone (-v announces each benchmark) or a name followed by
		// what the benchmark printed: its figures come later.
		p.pendingName = strings.Fields(l)[0]
	}
}

// parseResult parses one benchmark result line ("BenchmarkX-2 10 1500
// ns/op 3 p50-us") with benchfmt, the Go benchmark format's own reader.
// ok is false for anything else: a name alone, a name followed by what
// the benchmark printed, a log line.
func parseResult(line string) (name string, iters int64, metrics map[string]float64, ok bool) {
	r := benchfmt.NewReader(strings.NewReader(line), "go test -bench")
	for r.Scan() {
		res, isResult := r.Result().(*benchfmt.Result)
		if !isResult || res.Iters <= 0 || len(res.Values) == 0 {
			continue
		}
		metrics = make(map[string]float64, len(res.Values))
		for _, v := range res.Values {
			unit, val := v.Unit, v.Value
			if v.OrigUnit != "" { // as the benchmark reported it, not tidied
				unit, val = v.OrigUnit, v.OrigValue
			}
			metrics[unit] = val
		}
		return "Benchmark" + res.Name.String(), int64(res.Iters), metrics, true // benchfmt drops the prefix
	}
	return "", 0, nil, false
}

// splitProcs splits the "-N" GOMAXPROCS suffix off a benchmark name. go
// test adds it only when GOMAXPROCS > 1, so a name from a 1-CPU run keeps a
// numeric suffix of its own; the machines here have 2 cores.
func splitProcs(name string) (string, int) {
	if m := procsRe.FindStringSubmatch(name); m != nil {
		n, _ := strconv.Atoi(m[2])
		return m[1], n
	}
	return name, 0
}

func (p *goBenchParser) add(fullName string, iters int64, metrics map[string]float64) {
	name, procs := splitProcs(fullName)
	r := p.runs[name]
	if r == nil {
		r = &benchRuns{procs: procs, metrics: make(map[string][]float64)}
		p.runs[name] = r
		p.order = append(p.order, name)
	}
	r.iters = append(r.iters, float64(iters))
	for u, v := range metrics {
		r.metrics[u] = append(r.metrics[u], v)
	}
}

// flush files the current block under pkg (the header's name if the
// terminator gave none) and starts a new block.
func (p *goBenchParser) flush(pkg, status string) {
	defer p.reset()
	if len(p.runs) == 0 && len(p.skipped) == 0 && len(p.failed) == 0 && status != "fail" && status != "build failed" {
		return // nothing ran here: not worth a key
	}
	if pkg == "" {
		pkg = p.pkg
	}
	if pkg == "" {
		pkg = "unknown"
	}
	gp := &GoPackage{Status: status}
	if len(p.runs) > 0 {
		gp.Benchmarks = make(map[string]*GoBenchmark, len(p.runs))
		for _, name := range p.order {
			r := p.runs[name]
			b := &GoBenchmark{Procs: r.procs, Runs: len(r.iters), Iterations: int64(median(r.iters)), Metrics: make(map[string]float64, len(r.metrics))}
			for u, vs := range r.metrics {
				b.Metrics[u] = median(vs)
			}
			gp.Benchmarks[name] = b
		}
	}
	if len(p.skipped) > 0 {
		gp.Skipped = p.skipped
	}
	if len(p.failed) > 0 {
		gp.Failed = p.failed
	}
	p.out[pkg] = gp
}

// median of vs (not reordered); for an even count, the mean of the middle
// two.
func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	mid := len(s) / 2
	if len(s)%2 == 1 {
		return s[mid]
	}
	return (s[mid-1] + s[mid]) / 2
}
