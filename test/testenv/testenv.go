// Package testenv is test support for end-to-end tests: it builds the real
// binaries, writes configs pointing at them, reads timelines back and finds
// the processes a test started. Imported only from _test.go files.
package testenv

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"text/template"

	"github.com/rspp/rspp/kernel"
)

// Bins are freshly built binaries.
type Bins struct {
	Dir      string
	RSPP     string
	Provider map[string]string // name -> path
}

// Providers built by Build.
var Providers = []string{"pocketsphinx", "rules", "espeak"}

// ModuleRoot is the repository root (where go.mod is).
func ModuleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside the module")
	}
	return filepath.Dir(mod), nil
}

// MustModuleRoot is ModuleRoot for tests: it fails t instead.
func MustModuleRoot(t testing.TB) string {
	t.Helper()
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// Build compiles rspp and the providers into dir (CGO off, like make build).
func Build(dir string) (Bins, error) {
	root, err := ModuleRoot()
	if err != nil {
		return Bins{}, err
	}
	b := Bins{Dir: dir, RSPP: filepath.Join(dir, "rspp"), Provider: map[string]string{}}
	targets := map[string]string{b.RSPP: "./cmd/runtime"}
	for _, p := range Providers {
		b.Provider[p] = filepath.Join(dir, "providers", p)
		targets[b.Provider[p]] = "./providers/" + p
	}
	for out, pkg := range targets {
		cmd := exec.Command("go", "build", "-o", out, pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if msg, err := cmd.CombinedOutput(); err != nil {
			return Bins{}, fmt.Errorf("go build %s: %v\n%s", pkg, err, msg)
		}
	}
	return b, nil
}

// ConfigOptions shape a test config of the example pipeline.
type ConfigOptions struct {
	StateDir    string
	TokenDelay  int  // rules: ms between streamed words
	TTSRealtime bool // espeak: pace frames at 20 ms
	Instances   int
}

var configTmpl = template.Must(template.New("cfg").Parse(`version: 1
runtime:
  state_dir: {{.Opt.StateDir}}
providers:
  pocketsphinx:
    kind: stt
    binary: {{index .Bins.Provider "pocketsphinx"}}
    instances: {{.Opt.Instances}}
    config:
      grammar: {{.Examples}}/grammar.jsgf
  rules:
    kind: llm
    binary: {{index .Bins.Provider "rules"}}
    instances: {{.Opt.Instances}}
    config:
      replies: {{.Examples}}/replies.yaml
      token_delay_ms: {{.Opt.TokenDelay}}
  espeak:
    kind: tts
    binary: {{index .Bins.Provider "espeak"}}
    instances: {{.Opt.Instances}}
    config:
      realtime: {{.Opt.TTSRealtime}}
pipeline:
  nodes:
    - {id: stt, provider: pocketsphinx, timeout: 15s}
    - {id: llm, provider: rules, timeout: 15s}
    - {id: tts, provider: espeak, timeout: 15s}
  edges:
    - {from: ingress, to: stt}
    - {from: stt, to: llm}
    - {from: llm, to: tts}
    - {from: tts, to: egress}
vad: {threshold_db: -40, min_speech: 60ms, hangover: 400ms}
`))

// WriteConfig writes a config of the example pipeline into dir and returns
// its path.
func WriteConfig(dir string, b Bins, o ConfigOptions) (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	if o.Instances == 0 {
		o.Instances = 1
	}
	if o.StateDir == "" {
		o.StateDir = filepath.Join(dir, "state")
	}
	var buf bytes.Buffer
	if err := configTmpl.Execute(&buf, map[string]any{"Bins": b, "Opt": o, "Examples": filepath.Join(root, "examples")}); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "config.yaml")
	return path, os.WriteFile(path, buf.Bytes(), 0o644)
}

// Record is a timeline line: the kernel's record, read back from JSON.
type Record = kernel.TimelineRecord

// ReadTimeline parses a JSON Lines timeline; a torn last line (the writer
// was killed mid-write) is ignored.
func ReadTimeline(path string) ([]Record, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var recs []Record
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			continue
		}
		recs = append(recs, r)
	}
	return recs, sc.Err()
}

// TurnOutcome is what the timeline says of one accepted turn.
type TurnOutcome struct {
	Session, Turn string
	Commits       int
	Aborts        int
	Closes        int
	AbortReasons  []string
}

// Turns groups lifecycle records by (session, turn) in order of turn_open.
func Turns(recs []Record) []*TurnOutcome {
	var order []*TurnOutcome
	by := map[string]*TurnOutcome{}
	for _, r := range recs {
		key := r.SessionID + "\x00" + r.TurnID
		t := by[key]
		if r.Type == "turn_open" && t == nil {
			t = &TurnOutcome{Session: r.SessionID, Turn: r.TurnID}
			by[key] = t
			order = append(order, t)
		}
		if t == nil {
			continue
		}
		switch r.Type {
		case "turn_commit":
			t.Commits++
		case "turn_abort":
			t.Aborts++
			t.AbortReasons = append(t.AbortReasons, r.Reason)
		case "turn_close":
			t.Closes++
		}
	}
	return order
}

// CheckTerminals returns an error for every accepted turn that did not end
// in exactly one terminal followed by one turn_close.
func CheckTerminals(recs []Record) error {
	var bad []string
	for _, t := range Turns(recs) {
		if t.Commits+t.Aborts != 1 || t.Closes != 1 {
			bad = append(bad, fmt.Sprintf("%s/%s: %d commit, %d abort, %d close", t.Session, t.Turn, t.Commits, t.Aborts, t.Closes))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("turns without exactly one terminal: %s", strings.Join(bad, "; "))
	}
	return nil
}

// Proc is a running process.
type Proc struct {
	Pid int
	Exe string
}

// ProcsUnder lists live processes whose executable is inside dir.
func ProcsUnder(dir string) []Proc {
	dir, _ = filepath.Abs(dir)
	entries, _ := os.ReadDir("/proc")
	var out []Proc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err != nil {
			continue
		}
		if strings.HasPrefix(exe, dir+string(filepath.Separator)) && !zombie(pid) {
			out = append(out, Proc{Pid: pid, Exe: exe})
		}
	}
	return out
}

func zombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] == 'Z'
}

// ProcOf finds the live process running binary exe.
func ProcOf(exe string) (int, bool) {
	for _, p := range ProcsUnder(filepath.Dir(exe)) {
		if p.Exe == exe {
			return p.Pid, true
		}
	}
	return 0, false
}

// RunWithBins is a test package's TestMain body for tests of the built
// binaries: it builds rspp and the providers into a fresh temp dir named
// after prefix, sets *bins, runs the tests, fails the run if a process of
// those binaries is left behind, and removes the dir. It returns the exit
// code for os.Exit.
func RunWithBins(m *testing.M, prefix string, bins *Bins) int {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if *bins, err = Build(dir); err != nil {
		fmt.Fprintln(os.Stderr, "building binaries:", err)
		return 1
	}
	code := m.Run()
	if left := ProcsUnder(dir); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "processes left behind: %v\n", left)
		code = 1
	}
	return code
}
