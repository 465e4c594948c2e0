package wsload

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rspp/rspp/transports/wav"
)

// rspp-wsload end to end against the fake server: the report is printed
// and written as JSON; a run that breaks an invariant exits with ErrCheck.
func TestMainWritesReport(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.wav")
	if err := wav.WriteFile(in, slices.Concat(silence(100), tone(600, 0.3), silence(100))); err != nil {
		t.Fatal(err)
	}
	url := startFakeServer(t, &fakeServer{})
	report := filepath.Join(dir, "report.json")
	var out bytes.Buffer
	err := Main(context.Background(), []string{"--url", url, "--clients", "2", "--duration", "3s", "--input", in,
		"--gap", "100ms", "--barge-in-every", "2", "--barge-in-after", "200ms", "--report", report}, &out, &out)
	if err != nil {
		t.Fatalf("Main: %v\n%s", err, &out)
	}
	for _, want := range []string{"2 clients x 3s", "barge-in: speech start -> fence", "egress frame lateness", "wrote " + report} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, &out)
		}
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"first_audio_ms", "barge_in_fence_ms", "barge_in_last_frame_ms", "egress_lateness_ms", "turns", "frames_after_fence"} {
		if _, ok := got[k]; !ok {
			t.Errorf("report has no %q", k)
		}
	}

	bad := startFakeServer(t, &fakeServer{FramesAfterFence: 2})
	out.Reset()
	err = Main(context.Background(), []string{"--url", bad, "--duration", "3s", "--input", in, "--gap", "100ms",
		"--barge-in-every", "2", "--barge-in-after", "200ms"}, &out, &out)
	if !errors.Is(err, ErrCheck) {
		t.Errorf("against a server that sends audio after a fence: %v, want ErrCheck", err)
	}
}

func TestMainRejectsBadFlags(t *testing.T) {
	var out bytes.Buffer
	for name, args := range map[string][]string{
		"no input":   {"--clients", "1"},
		"no clients": {"--clients", "0", "--input", "x.wav"},
		"stray":      {"--input", "x.wav", "extra"},
		"bad wav":    {"--input", filepath.Join(t.TempDir(), "absent.wav")},
	} {
		if err := Main(context.Background(), args, &out, &out); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
