package load

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/supervisor/admin"
	"github.com/rspp/rspp/supervisor/internal/testplugin"
	"github.com/rspp/rspp/supervisor/internal/testrt"

	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/supervisor/config"
	"github.com/rspp/rspp/supervisor/session"
	"github.com/rspp/rspp/transports/wav"
)

var buildMu sync.Mutex

// build compiles pkg into dir/name (CGO off, like make build).
func build(t *testing.T, dir, name, pkg string, ldflags string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	out := filepath.Join(dir, name)
	args := []string{"build", "-o", out}
	if ldflags != "" {
		args = append(args, "-ldflags", ldflags)
	}
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, msg)
	}
	return out
}

// Must-show: SIGKILL of rspp itself takes every plugin it started with
// it within 1 s (Pdeathsig from the locked spawn thread, process groups),
// and the next start sweeps the dead run's state. On the way, the running
// rspp serve is upgraded with the rspp upgrade command and reloaded with
// SIGHUP.
func TestSIGKILLOfRsppLeavesNoPlugin(t *testing.T) {
	dir := testplugin.ShortDir(t)
	rspp := build(t, dir, "rspp", "github.com/rspp/rspp/cmd/runtime", "")
	cfgPath := testplugin.Config(t, dir, nil, "")
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(dir, "in.wav")
	if err := wav.WriteFile(in, testplugin.Tone(400*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(rspp, "serve", "--config", cfgPath, "--input", in, "--sessions", "3")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sock, ok := strings.CutPrefix(sc.Text(), "serving 3 sessions; admin socket "); ok {
				ready <- sock
			}
		}
	}()
	var sock string
	select {
	case sock = <-ready:
	case <-time.After(60 * time.Second):
		t.Fatal("rspp serve never became ready")
	}
	// rspp upgrade talks to it over the admin socket: a binary that is no
	// plugin is refused and the old version stays; a good one is taken.
	self, _ := os.Executable()
	bad := exec.Command(rspp, "upgrade", "--socket", sock, "--provider", "tts", "--binary", "/bin/true")
	if out, err := bad.CombinedOutput(); err == nil || !strings.Contains(string(out), "old version kept") {
		t.Fatalf("rspp upgrade to /bin/true: %v: %s", err, out)
	}
	good := exec.Command(rspp, "upgrade", "--socket", sock, "--provider", "tts", "--binary", self)
	if out, err := good.CombinedOutput(); err != nil || !strings.Contains(string(out), "(pool tts#1) -> 1.0.0 (pool tts#3)") {
		t.Fatalf("rspp upgrade: %v: %s", err, out)
	}
	// SIGHUP re-reads the config: the changed llm provider gets a new pool.
	raw, _ := os.ReadFile(cfgPath)
	if err := os.WriteFile(cfgPath, []byte(strings.Replace(string(raw), "config: {role: llm}", "config: {role: llm, hang_file: /nonexistent}", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for reloaded := false; !reloaded; {
		st, err := admin.Call(ctx, sock, admin.Request{Op: "status"})
		if err != nil {
			t.Fatalf("no llm#2 pool after SIGHUP: %v", err)
		}
		for _, p := range st.Pools {
			reloaded = reloaded || p.Key == "llm#2"
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, err := admin.Call(ctx, sock, admin.Request{Op: "status"})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Plugins) < 3 || resp.Pid != cmd.Process.Pid {
		t.Fatalf("status: rspp pid %d (started %d), plugins %v", resp.Pid, cmd.Process.Pid, resp.Plugins)
	}
	time.Sleep(time.Second) // sessions are taking turns
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	_ = cmd.Wait()
	var alive []int
	for {
		alive = alive[:0]
		for _, pid := range resp.Plugins {
			if externalnode.ProcessAlive(pid) {
				alive = append(alive, pid)
			}
		}
		if len(alive) == 0 || time.Since(killed) > time.Second {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if len(alive) > 0 {
		t.Fatalf("plugins %v still alive 1 s after SIGKILL of rspp", alive)
	}
	t.Logf("all %d plugins gone %v after SIGKILL of rspp", len(resp.Plugins), time.Since(killed).Round(time.Millisecond))

	// The next start sweeps the dead run's socket dirs and takes over its
	// admin socket.
	runDir := filepath.Join(cfg.Runtime.StateDir, "run-"+strconv.Itoa(resp.Pid))
	if _, err := os.Stat(runDir); err != nil {
		t.Fatalf("dead run left no state to sweep (%v): test proves nothing", err)
	}
	rt := testrt.Start(t, cfgPath, nil)
	if _, err := os.Stat(runDir); !os.IsNotExist(err) {
		t.Fatalf("stale run dir %s not swept: %v", runDir, err)
	}
	srv, err := admin.Serve(rt, sock)
	if err != nil {
		t.Fatalf("stale admin socket not taken over: %v", err)
	}
	srv.Close()
}

// Must-show: 50 sessions keep taking turns while the TTS provider is
// upgraded (over the admin socket) to a binary reporting another version:
// no failed turn, every turn opened after the switch is bound to the new
// version, no session restarted, and the old pool drains and stops.
func TestHotUpgradeUnderFiftySessions(t *testing.T) {
	if testing.Short() {
		t.Skip("50 real-time sessions")
	}
	dir := testplugin.ShortDir(t)
	v1 := build(t, dir, "espeak-1", "github.com/rspp/rspp/providers/espeak", "-X main.version=1.0.0")
	v2 := build(t, dir, "espeak-2", "github.com/rspp/rspp/providers/espeak", "-X main.version=2.0.0")
	cfgPath := testplugin.Config(t, dir, map[string]string{"stt": "instances: 2", "llm": "instances: 2"}, "")
	raw, _ := os.ReadFile(cfgPath)
	self, _ := os.Executable()
	// tts is the real espeak provider, version 1.0.0.
	s := strings.Replace(string(raw), "  tts:\n    kind: tts\n    binary: "+self+"\n    args: ["+testplugin.Arg+", tts]\n", "  tts:\n    kind: tts\n    binary: "+v1+"\n    instances: 2\n", 1)
	s = strings.Replace(s, "config: {role: tts}", "config: {voice: en-us}", 1)
	if err := os.WriteFile(cfgPath, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	rt := testrt.Start(t, cfgPath, nil)
	oldPool := rt.Pool("tts")
	if v := oldPool.Info().Version; v != "1.0.0" {
		t.Fatalf("tts version %q before the upgrade", v)
	}
	oldPids := oldPool.Pids()
	srv, err := admin.Serve(rt, filepath.Join(rt.StateDir().Root, "admin.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	tl := &session.Collector{}
	done := make(chan Result, 1)
	go func() {
		done <- Run(context.Background(), rt, Options{Sessions: 50, Utterances: [][]byte{testplugin.Tone(400 * time.Millisecond)},
			Gap: 2 * time.Second, Turns: 4, Realtime: true, Polite: true, Stagger: 20 * time.Millisecond, Timeline: tl, Prefix: "up"})
	}()
	time.Sleep(4 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := admin.Call(ctx, srv.Path(), admin.Request{Op: "upgrade", Provider: "tts", Binary: v2})
	switched := session.ProcessClock{}.Now()
	if err != nil {
		t.Fatal(err)
	}
	if u := resp.Upgrade; u.OldVersion != "1.0.0" || u.NewVersion != "2.0.0" {
		t.Fatalf("upgrade result %+v", u)
	}
	res := <-done
	recs := tl.Records()
	term := CountTerminals(recs)
	opens := map[string]int{}
	var before, after, wrongVersion int
	for _, r := range recs {
		switch r.Type {
		case "session_open":
			opens[r.SessionID]++
		case "turn_open":
			v := r.Attrs["binding.tts"]
			switch {
			case r.MonoNanos > switched && v != "tts@2.0.0":
				wrongVersion++
				t.Errorf("turn %s/%s opened after the switch bound to %s", r.SessionID, r.TurnID, v)
			case r.MonoNanos > switched:
				after++
			default:
				before++
			}
		}
	}
	logTurnTimes(t, recs, switched)
	t.Logf("sessions %d (lost %d); turns opened %d (before switch %d, after %d), committed %d, aborted %d %v; wrong terminals %d",
		term.Sessions, len(res.Lost), term.Opened, before, after, term.Committed, term.Aborted, term.AbortReasons, len(term.Wrong))
	if term.Aborted > 0 || len(term.Wrong) > 0 || term.Committed != term.Opened {
		t.Errorf("failed turns during the upgrade: %d aborted %v, wrong %v", term.Aborted, term.AbortReasons, term.Wrong)
	}
	if len(res.Lost) > 0 || len(opens) != 50 || term.Closed != 50 {
		t.Errorf("sessions lost or restarted: lost %v, distinct sessions %d, closed %d", res.Lost, len(opens), term.Closed)
	}
	for id, n := range opens {
		if n != 1 {
			t.Errorf("session %s opened %d times", id, n)
		}
	}
	if before == 0 || after == 0 {
		t.Errorf("turns before the switch %d, after %d: the switch did not happen mid-load", before, after)
	}
	// The old pool drains and stops once no turn is bound to it.
	deadline := time.Now().Add(30 * time.Second)
	for rt.PoolByKey(oldPool.Key()) != nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if rt.PoolByKey(oldPool.Key()) != nil {
		t.Fatal("old tts pool never drained")
	}
	for _, pid := range oldPids {
		if externalnode.ProcessAlive(pid) {
			t.Errorf("old tts plugin pid %d still alive after drain", pid)
		}
	}
}

// A new version that fails its health check (here: it does not even
// handshake) leaves the old version serving, and the error says why.
func TestFailedUpgradeKeepsOldVersion(t *testing.T) {
	rt := testrt.Start(t, testplugin.Config(t, t.TempDir(), nil, ""), nil)
	old := rt.Pool("tts").Key()
	_, err := rt.Upgrade(context.Background(), "tts", "/bin/true")
	if err == nil || !strings.Contains(err.Error(), "old version kept") {
		t.Fatalf("upgrade to a non-plugin: %v", err)
	}
	if rt.Pool("tts").Key() != old {
		t.Fatal("failed upgrade switched the binding")
	}
	if b, _ := rt.Binding("tts"); b.Pool != old {
		t.Fatalf("binding %+v after failed upgrade", b)
	}
}

// logTurnTimes logs each turn's open and end relative to the switch, for
// reading a failure.
func logTurnTimes(t *testing.T, recs []kernel.TimelineRecord, switched int64) {
	opened := map[string]int64{}
	for _, r := range recs {
		k := r.SessionID + "/" + r.TurnID
		switch r.Type {
		case "turn_open":
			opened[k] = r.MonoNanos
		case "turn_commit", "turn_abort":
			t.Logf("%s %s: opened %+.2fs from the switch, took %.2fs %s", k, r.Type, float64(opened[k]-switched)/1e9, float64(r.MonoNanos-opened[k])/1e9, r.Reason)
		}
	}
}
