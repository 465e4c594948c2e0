package authority

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rspp/rspp/providers/speechtest"
	"github.com/rspp/rspp/test/testenv"
	"github.com/rspp/rspp/transports/wav"
)

// Idempotency: espeak declares itself idempotent. SIGKILLed mid-reply,
// with audio already played, its node is retried (on_failure retry) on a
// fresh instance; the retry speaks the reply again from the start and the
// kernel deduplicates what the first attempt delivered: the agent's
// output is the reply exactly once, byte for byte as without the crash.
func TestIdempotentTTSRetriedMidReplyIsDeduplicated(t *testing.T) {
	speechtest.Require(t)
	pcm, err := speechtest.Synthesize(context.Background(), "hello there")
	if err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(t.TempDir(), "in.wav")
	if err := wav.WriteFile(in, pcm); err != nil {
		t.Fatal(err)
	}
	clean := runTTSRetry(t, in, false)
	crashed := runTTSRetry(t, in, true)
	if len(clean.out) < 44+40*640 || !bytes.Equal(crashed.out, clean.out) {
		t.Fatalf("output after the retry: %d bytes, without the crash %d (equal: %v)", len(crashed.out), len(clean.out), bytes.Equal(crashed.out, clean.out))
	}
	var retry *testenv.Record
	for i, r := range crashed.recs {
		if r.Type == "invocation_retry" && r.NodeID == "tts" {
			retry = &crashed.recs[i]
		}
	}
	if retry == nil || retry.Attrs["deduplicate"] == "" || retry.Attrs["deduplicate"] == "0" {
		t.Fatalf("no deduplicating retry of tts: %v", types(crashed.recs))
	}
	if len(find(crashed.recs, "turn_commit")) != 1 {
		t.Fatalf("turn did not commit: %v", types(crashed.recs))
	}
	t.Logf("tts killed after %s frames were delivered; reply %d bytes either way", retry.Attrs["deduplicate"], len(clean.out))
}

type ttsRun struct {
	out  []byte
	recs []testenv.Record
}

func runTTSRetry(t *testing.T, in string, kill bool) ttsRun {
	t.Helper()
	dir := t.TempDir()
	state, err := os.MkdirTemp("", "rd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(state) })
	// One instance per provider: the test kills espeak's, and the retry
	// waits for the replacement. With two, the retry could land on the
	// other instance, killed in the same sweep but not yet seen dead.
	cfgPath, err := testenv.WriteConfig(dir, bins, testenv.ConfigOptions{StateDir: state, TTSRealtime: true, Instances: 1})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(cfgPath)
	cfg := strings.Replace(string(raw), "{id: tts, provider: espeak, timeout: 15s}", "{id: tts, provider: espeak, timeout: 15s, on_failure: retry, max_retries: 1}", 1)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	out, tl := filepath.Join(dir, "out.wav"), filepath.Join(dir, "timeline.jsonl")
	cmd := exec.Command(bins.RSPP, "run", "--config", cfgPath, "--input", in, "--output", out, "--timeline", tl, "--realtime")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	if kill {
		deadline := time.Now().Add(60 * time.Second)
		for fileSize(out) < 44+30*640 && time.Now().Before(deadline) {
			time.Sleep(2 * time.Millisecond)
		}
		killed := 0
		for _, p := range testenv.ProcsUnder(bins.Dir) {
			if p.Exe == bins.Provider["espeak"] {
				if syscall.Kill(p.Pid, syscall.SIGKILL) == nil {
					killed++
				}
			}
		}
		if killed == 0 {
			t.Fatal("no espeak instance to kill")
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("rspp run: %v\nstdout:\n%s\nstderr:\n%s", err, &stdout, &stderr)
		}
	case <-time.After(90 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("rspp run did not end\nstderr:\n%s", &stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := testenv.ReadTimeline(tl)
	if err != nil {
		t.Fatal(err)
	}
	if err := testenv.CheckTerminals(recs); err != nil {
		t.Fatal(err)
	}
	return ttsRun{out: b, recs: recs}
}
