package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// Results is bench/results.json.
type Results struct {
	GeneratedAt    time.Time             `json:"generated_at"`
	Machine        Machine               `json:"machine"`
	FrameRoundTrip *RoundTrips           `json:"frame_roundtrip"`
	FloodRSS       *FloodRSS             `json:"supervisor_rss_under_flood,omitempty"`
	Live           *Live                 `json:"live,omitempty"`
	Capacity       *Capacity             `json:"capacity,omitempty"`
	Example        *Example              `json:"example_pipeline,omitempty"`
	LiveKit        *LiveKitBench         `json:"livekit,omitempty"`
	GoBenchmarks   map[string]*GoPackage `json:"go_benchmarks"` // by package import path
	Notes          []string              `json:"notes,omitempty"`
}

// Machine says where the numbers were taken; absolute figures mean little
// without it.
type Machine struct {
	Cores      int    `json:"cores"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	GoVersion  string `json:"go_version"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	Kernel     string `json:"kernel"`
	CPUModel   string `json:"cpu_model,omitempty"`
}

// ThisMachine describes the machine the driver runs on.
func ThisMachine() Machine {
	m := Machine{
		Cores: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0),
		GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH,
	}
	var u syscall.Utsname
	if syscall.Uname(&u) == nil {
		m.Kernel = cString(u.Release[:])
	}
	m.CPUModel = cpuModel()
	return m
}

func cString(b []int8) string {
	var sb strings.Builder
	for _, c := range b {
		if c == 0 {
			break
		}
		sb.WriteByte(byte(c))
	}
	return sb.String()
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// WriteJSON writes r pretty-printed to path, atomically: a reader never
// sees a half-written file, and a failed run leaves the previous one.
func WriteJSON(path string, r *Results) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".results-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// PrintSummary writes a short human table of r.
func PrintSummary(w io.Writer, r *Results) {
	m := r.Machine
	fmt.Fprintf(w, "machine: %d cores, %s, linux %s, %s\n", m.Cores, m.GoVersion, m.Kernel, m.CPUModel)
	if rt := r.FrameRoundTrip; rt != nil {
		fmt.Fprintf(w, "\nframe round trip, %d B, %d samples a path in %d interleaved rounds (µs)\n", rt.FrameBytes, rt.RealPath.N, rt.Rounds)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "path\tp50\tp99\tmean\tmin\tmax\t")
		for _, p := range []struct {
			name string
			s    Summary
		}{{"real path (externalnode, window 64)", rt.RealPath}, {"real path, window 1", rt.RealWindow1}, {"real path, window 4096", rt.RealWindowMax},
			{"bare go-plugin gRPC", rt.BareGRPC}, {"raw unix socket", rt.RawUnix}, {"session (kernel+runner)", rt.SessionPath}} {
			fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t\n", p.name, p.s.P50us, p.s.P99us, p.s.MeanUs, p.s.MinUs, p.s.MaxUs)
		}
		for _, p := range []struct {
			name string
			s    *Summary
		}{{"Node.js SDK echo node", rt.NodeJS}, {"Python SDK echo node", rt.Python}} {
			if p.s != nil {
				fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t\n", p.name, p.s.P50us, p.s.P99us, p.s.MeanUs, p.s.MinUs, p.s.MaxUs)
			}
		}
		_ = tw.Flush()
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "ratio\tp50\tp99\tmean\t")
		for _, k := range []string{"real/bare", "real/raw", "bare/raw", "session/real", "session/bare", "real/window_4096", "window_1/window_4096", "nodejs/real", "python/real"} {
			q, ok := rt.Ratios[k]
			if !ok {
				continue
			}
			fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%.2f\t\n", k, q.P50, q.P99, q.Mean)
		}
		_ = tw.Flush()
	}
	if f := r.FloodRSS; f != nil {
		fmt.Fprintf(w, "\nsupervisor RSS, %.0f s echoing vs %.0f s under a node flooding 60 KiB events (default output budget)\n", f.PhaseSeconds, f.PhaseSeconds)
		fmt.Fprintf(w, "  baseline peak %d KiB, flood peak %d KiB: growth %d KiB, ratio %.2f; %d invocations, %d ended by the budget, %.1f MiB accepted\n",
			f.BaselinePeakKiB, f.FloodPeakKiB, f.GrowthKiB, f.PeakRatio, f.Invocations, f.BudgetFailures, float64(f.BytesAccepted)/(1<<20))
	}
	if c := r.Capacity; c != nil {
		printCapacity(w, c)
	}
	if e := r.Example; e != nil {
		printExample(w, e)
	}
	if l := r.Live; l != nil {
		printLive(w, l)
	}
	if b := r.LiveKit; b != nil {
		printLiveKit(w, b)
	}
	if len(r.GoBenchmarks) > 0 {
		fmt.Fprintln(w, "\ngo benchmarks")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, pkg := range slices.Sorted(mapKeys(r.GoBenchmarks)) {
			p := r.GoBenchmarks[pkg]
			// A line without tabs ends tabwriter's column block: each
			// package aligns on its own.
			fmt.Fprintf(tw, "%s [%s]\n", pkg, p.Status)
			for _, name := range slices.Sorted(mapKeys(p.Benchmarks)) {
				b := p.Benchmarks[name]
				var figs []string
				for _, u := range sortUnits(b.Metrics) {
					figs = append(figs, fmt.Sprintf("%.4g %s", b.Metrics[u], u))
				}
				fmt.Fprintf(tw, "  %s\t%s\n", name, strings.Join(figs, ", "))
			}
			for _, name := range slices.Sorted(mapKeys(p.Skipped)) {
				fmt.Fprintf(tw, "  %s\tSKIP: %s\n", name, firstLine(p.Skipped[name]))
			}
			for _, name := range slices.Sorted(mapKeys(p.Failed)) {
				fmt.Fprintf(tw, "  %s\tFAIL: %s\n", name, firstLine(p.Failed[name]))
			}
		}
		_ = tw.Flush()
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}

// sortUnits orders a benchmark's units for reading: ns/op, then the
// benchmark's own metrics by name, then the -benchmem figures.
func sortUnits(m map[string]float64) []string {
	rank := func(u string) int {
		switch u {
		case "ns/op":
			return 0
		case "B/op":
			return 2
		case "allocs/op":
			return 3
		}
		return 1
	}
	return slices.SortedFunc(mapKeys(m), func(a, b string) int {
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra - rb
		}
		return strings.Compare(a, b)
	})
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
