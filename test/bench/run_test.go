package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMainWritesResults runs the driver end to end with a tiny N and checks
// the shape of results.json, not its numbers.
func TestMainWritesResults(t *testing.T) {
	if testing.Short() {
		t.Skip("starts plugin processes")
	}
	out := filepath.Join(t.TempDir(), "sub", "results.json")
	var stdout, stderr bytes.Buffer
	err := Main(context.Background(), []string{"-n", "30", "-warmup", "5", "-rounds", "3", "-gobench", "testdata/gobench-plain.txt", "-out", out}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("Main: %v\n%s", err, stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"generated_at", "machine", "frame_roundtrip", "go_benchmarks"} {
		if _, ok := got[k]; !ok {
			t.Errorf("results.json has no %q", k)
		}
	}
	rt, _ := got["frame_roundtrip"].(map[string]any)
	for _, k := range []string{NameRealPath, NameBareGRPC, NameRawUnix, NameSessionPath, "ratios"} {
		if _, ok := rt[k]; !ok {
			t.Errorf("frame_roundtrip has no %q", k)
		}
	}
	if gb, _ := got["go_benchmarks"].(map[string]any); gb["probe/b"] == nil {
		t.Errorf("go_benchmarks = %v", got["go_benchmarks"])
	}
	if m, _ := got["machine"].(map[string]any); m["cores"].(float64) < 1 || m["go_version"] == "" {
		t.Errorf("machine = %v", m)
	}
	for _, want := range []string{"real/bare", "raw unix socket", "BenchmarkB"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, stdout.String())
		}
	}
}

func TestMainMissingGoBenchIsANote(t *testing.T) {
	pkgs, note, err := readGoBench(filepath.Join(t.TempDir(), "absent.txt"))
	if err != nil || pkgs != nil || !strings.Contains(note, "absent.txt") {
		t.Fatalf("pkgs=%v note=%q err=%v", pkgs, note, err)
	}
}

func TestMainRejectsStrayArguments(t *testing.T) {
	var out bytes.Buffer
	if err := Main(context.Background(), []string{"extra"}, &out, &out); err == nil {
		t.Fatal("no error for a stray argument")
	}
}
