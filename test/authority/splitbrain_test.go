// Package authority tests RK-09 end to end: two real rspp processes, one
// real etcd (Debian's etcd-server, started by the test), real plugins.
package authority

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rspp/rspp/isolation"
	"github.com/rspp/rspp/providers/speechtest"
	"github.com/rspp/rspp/test/etcdtest"
	"github.com/rspp/rspp/test/testenv"
	"github.com/rspp/rspp/transports/wav"
)

var bins testenv.Bins

func TestMain(m *testing.M) {
	isolation.MaybeSandboxMain()
	os.Exit(testenv.RunWithBins(m, "rspp-authority-bin-", &bins))
}

// proc is one rspp run of the shared session.
type proc struct {
	name, dir, cfg, out, timeline string
	cmd                           *exec.Cmd
	stdout, stderr                bytes.Buffer
	done                          chan struct{}
}

func newProc(t *testing.T, name, in string) *proc {
	t.Helper()
	p := &proc{name: name, dir: t.TempDir(), done: make(chan struct{})}
	state, err := os.MkdirTemp("", "ra")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(state) })
	// The TTS paces its frames at real time: the reply streams out over
	// about two seconds, so the first process can be stopped mid-reply.
	if p.cfg, err = testenv.WriteConfig(p.dir, bins, testenv.ConfigOptions{StateDir: state, TTSRealtime: true}); err != nil {
		t.Fatal(err)
	}
	p.out = filepath.Join(p.dir, "out.wav")
	p.timeline = filepath.Join(p.dir, "timeline.jsonl")
	return p
}

func (p *proc) start(t *testing.T, in, etcd string) {
	t.Helper()
	// Both runs serve session file-1 (the file transport's default id).
	p.cmd = exec.Command(bins.RSPP, "run", "--config", p.cfg, "--input", in, "--output", p.out, "--timeline", p.timeline,
		"--realtime", "--etcd", etcd, "--lease-ttl", "2s")
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGCONT)
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
}

func (p *proc) wait(t *testing.T, limit time.Duration) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(limit):
		t.Fatalf("%s did not exit within %v\nstdout:\n%s\nstderr:\n%s", p.name, limit, &p.stdout, &p.stderr)
	}
}

func (p *proc) records(t *testing.T) []testenv.Record {
	t.Helper()
	recs, err := testenv.ReadTimeline(p.timeline)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return -1
	}
	return st.Size()
}

// stopped reports whether pid is in state T (stopped).
func stopped(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] == 'T'
}

func find(recs []testenv.Record, typ string) []testenv.Record {
	var out []testenv.Record
	for _, r := range recs {
		if r.Type == typ {
			out = append(out, r)
		}
	}
	return out
}

func epochOf(t *testing.T, recs []testenv.Record) uint64 {
	t.Helper()
	open := find(recs, "session_open")
	if len(open) != 1 {
		t.Fatalf("session_open records: %v", open)
	}
	e, err := strconv.ParseUint(open[0].Attrs["epoch"], 10, 64)
	if err != nil || e == 0 {
		t.Fatalf("session epoch %q", open[0].Attrs["epoch"])
	}
	return e
}

// Split brain: process A holds session file-1 and is mid-reply when it is
// SIGSTOPped past its lease TTL; process B takes the session over with a
// higher epoch and serves it; A is resumed. Everything A still produces
// dies at its egress fence (counted, recorded) or, when A notices the loss
// at ingress first, is cancelled with its turn before it is delivered: not
// one frame reaches A's transport (its output WAV) after the stop, while
// B's reply is whole.
func TestSplitBrainStaleHolderOutputDiesAtEgressFence(t *testing.T) {
	speechtest.Require(t)
	srv := etcdtest.Start(t)
	pcm, err := speechtest.Synthesize(context.Background(), "hello there")
	if err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(t.TempDir(), "in.wav")
	if err := wav.WriteFile(in, pcm); err != nil {
		t.Fatal(err)
	}
	a, b := newProc(t, "A", in), newProc(t, "B", in)
	a.start(t, in, srv.Endpoint)

	// Stop A once its reply is streaming to its transport, 0.8 s into it
	// (past the end of its input: from the resume on, only its own
	// outputs are left).
	const header, frame = 44, 640
	deadline := time.Now().Add(60 * time.Second)
	for fileSize(a.out) < header+40*frame {
		if time.Now().After(deadline) {
			t.Fatalf("A never started its reply\nstderr:\n%s", &a.stderr)
		}
		select {
		case <-a.done:
			t.Fatalf("A exited early\nstdout:\n%s\nstderr:\n%s", &a.stdout, &a.stderr)
		case <-time.After(2 * time.Millisecond):
		}
	}
	if err := a.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	for !stopped(a.cmd.Process.Pid) {
		time.Sleep(time.Millisecond)
	}
	atStop := fileSize(a.out)

	// B takes the session over once A's lease has expired at etcd.
	b.start(t, in, srv.Endpoint)
	b.wait(t, 90*time.Second)
	if code := b.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("B exit %d\nstdout:\n%s\nstderr:\n%s", code, &b.stdout, &b.stderr)
	}
	if !stopped(a.cmd.Process.Pid) || fileSize(a.out) != atStop {
		t.Fatal("A ran while stopped")
	}
	// Resume A: it wakes up holding outputs of its old epoch.
	if err := a.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	a.wait(t, 60*time.Second)

	ra, rb := a.records(t), b.records(t)
	ea, eb := epochOf(t, ra), epochOf(t, rb)
	if eb <= ea {
		t.Fatalf("takeover epoch %d not above %d", eb, ea)
	}
	if got := fileSize(a.out); got != atStop && got != atStop+int64(frame) || got < atStop {
		// One frame may have been admitted by A's fence just before the
		// stop and written after the resume: it is of a valid lease.
		t.Fatalf("A's transport got %d bytes after its lease was lost", got-atStop)
	}
	lost := find(ra, "authority_lost")
	if len(lost) != 1 || lost[0].Attrs["epoch"] != strconv.FormatUint(ea, 10) {
		t.Fatalf("A's authority_lost %+v\nA: %v", lost, types(ra))
	}
	aborts := find(ra, "turn_abort")
	if len(aborts) != 1 || aborts[0].Reason != "stale_epoch" {
		t.Fatalf("A's turn ends %+v", aborts)
	}
	dropped := 0
	for _, d := range find(ra, "egress_drop") {
		if d.Reason == "stale_epoch" {
			n, _ := strconv.Atoi(d.Attrs["count"])
			dropped += n
		}
	}
	// What A still had in flight after the resume ends one of two ways,
	// depending on what its session loop saw first: a TTS output (the loss
	// is noticed at egress, the output dies at the fence: counted and
	// recorded as egress_drop stale_epoch) or an ingress frame of the
	// file's trailing silence (the loss is noticed at ingress, the turn is
	// cancelled and the TTS call with it, so its queued outputs are never
	// delivered). Either way the TTS did not end normally and nothing
	// reached A's transport (checked above).
	ttsEnded := false
	for _, r := range find(ra, "invocation_end") {
		if r.NodeID == "tts" && r.Reason == "ok" {
			ttsEnded = true
		}
	}
	switch at := lost[0].Attrs["at"]; {
	case dropped > 0:
	case at == "ingress" && !ttsEnded:
	default:
		t.Fatalf("A's loss was seen at %s, its fence dropped %d outputs, its tts ended ok %v: %v", at, dropped, ttsEnded, types(ra))
	}
	if err := testenv.CheckTerminals(ra); err != nil {
		t.Fatal(err)
	}
	// B served the session: a committed turn with the whole reply.
	if len(find(rb, "turn_commit")) != 1 || len(find(rb, "authority_lost")) != 0 {
		t.Fatalf("B: %v", types(rb))
	}
	bFrames := (fileSize(b.out) - header) / frame
	aFrames := (atStop - header) / frame
	if bFrames <= aFrames {
		t.Fatalf("B's reply (%d frames) not longer than A's cut one (%d)", bFrames, aFrames)
	}
	t.Logf("epochs A=%d B=%d; A: %d frames before the stop, %d outputs dropped at its fence; B: %d frames",
		ea, eb, aFrames, dropped, bFrames)
}

func types(recs []testenv.Record) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r.Type+"/"+r.Reason)
	}
	return out
}
