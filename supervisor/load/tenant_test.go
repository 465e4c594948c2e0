package load

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/supervisor"
	"github.com/rspp/rspp/supervisor/internal/testplugin"
	"github.com/rspp/rspp/supervisor/internal/testrt"
	"github.com/rspp/rspp/supervisor/pool"

	"github.com/rspp/rspp/isolation"
	"github.com/rspp/rspp/supervisor/session"
)

// tenantBinary copies the test binary into a world-readable directory:
// under the tenant profile both the sandbox entry point and the plugin
// run as an unprivileged uid, which cannot traverse go test's 0700 build
// directory. It skips unless cgroup envelopes work here (root).
func tenantBinary(t testing.TB) (dir, bin string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: cgroup envelopes and the tenant sandbox")
	}
	envs, err := isolation.OpenEnvelopes(isolation.EnvelopesConfig{})
	if err != nil {
		t.Skipf("no cgroup envelopes here: %v", err)
	}
	_ = envs.Close()
	dir = testplugin.ShortDir(t)
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin = filepath.Join(dir, "rspp-test")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, bin
}

// tenantConfig: trusted stt and llm, and providers ttsBlock / llmBlock
// appended to the tts and llm provider blocks (e.g. "profile: tenant").
func tenantConfig(t testing.TB, dir, bin string, blocks map[string]string) string {
	t.Helper()
	state := filepath.Join(dir, "st")
	if err := os.Mkdir(state, 0o711); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("version: 1\nruntime:\n  state_dir: " + state + "\n  kill_grace: 500ms\n  isolation: \"on\"\nproviders:\n")
	for _, role := range []string{"stt", "llm", "tts"} {
		b.WriteString("  " + role + ":\n    kind: " + role + "\n    binary: " + bin + "\n    args: [" + testplugin.Arg + ", " + role + "]\n    health_interval: 500ms\n")
		limits := "{memory_mb: 1024, cpu: 1, pids: 512}" // the race detector's appetite
		if x := blocks[role+".limits"]; x != "" {
			limits = x
		}
		b.WriteString("    limits: " + limits + "\n")
		cfg := "{role: " + role
		if x := blocks[role+".config"]; x != "" {
			cfg += ", " + x
		}
		b.WriteString("    config: " + cfg + "}\n")
		if x := blocks[role]; x != "" {
			b.WriteString("    " + strings.ReplaceAll(x, "\n", "\n    ") + "\n")
		}
	}
	b.WriteString(`pipeline:
  nodes:
    - {id: stt, provider: stt, timeout: 10s}
    - {id: llm, provider: llm, timeout: 10s}
    - {id: tts, provider: tts, timeout: 10s}
` + testplugin.ChainEdges)
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func startTenantRuntime(t testing.TB, cfgPath, entry string, events func(pool.Event)) *supervisor.Runtime {
	t.Helper()
	return testrt.StartWith(t, cfgPath, supervisor.Options{Events: events, SandboxEntry: entry})
}

// Must-show: two tenants on one tenant-profile provider. Tenant A's
// sessions make the TTS node flood audio and then crash, every turn, so
// A's pool crash-loops until its circuit opens. Tenant B's sessions on the
// same provider are served by B's own pool: every B turn commits, B's
// pool never sees a crash or a restart and its circuit stays closed.
func TestTenantCrashLoopStaysInItsOwnPool(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time sessions of two tenants")
	}
	dir, bin := tenantBinary(t)
	cfgPath := tenantConfig(t, dir, bin, map[string]string{
		"tts":        "profile: tenant\nidle_timeout: 30s\nrestart: {intensity: 3, period: 60s, backoff: 10ms, cooldown: 60s}",
		"tts.config": "crash_sessions: a-, flood: 5000",
	})
	evs := testplugin.NewEventLog[pool.Event]()
	rt := startTenantRuntime(t, cfgPath, bin, evs.Add)
	if p := rt.Pool("tts"); p != nil {
		t.Fatalf("tenant provider has a shared pool %s", p.Key())
	}
	tlA, tlB := &session.Collector{}, &session.Collector{}
	load := func(tenant string, tl session.Timeline) Result {
		return Run(context.Background(), rt, Options{Sessions: 2, Utterances: [][]byte{testplugin.Tone(400 * time.Millisecond)},
			Gap: 1500 * time.Millisecond, Turns: 5, Realtime: true, Polite: true, Stagger: 50 * time.Millisecond,
			Tenants: []string{tenant}, Prefix: tenant, Timeline: tl})
	}
	var (
		wg         sync.WaitGroup
		resA, resB Result
	)
	wg.Add(2)
	go func() { defer wg.Done(); resA = load("a", tlA) }()
	go func() { defer wg.Done(); resB = load("b", tlB) }()
	wg.Wait()
	status := map[string]pool.Status{}
	for _, st := range rt.Status() {
		status[st.Key] = st
	}
	const keyA, keyB = "tts#1/tenant=a", "tts#1/tenant=b"

	termB := CountTerminals(tlB.Records())
	termA := CountTerminals(tlA.Records())
	t.Logf("tenant B: turns opened %d, committed %d, aborted %d %v; tenant A: opened %d, committed %d, aborted %d %v",
		termB.Opened, termB.Committed, termB.Aborted, termB.AbortReasons, termA.Opened, termA.Committed, termA.Aborted, termA.AbortReasons)
	t.Logf("pool %s: %+v; pool %s: %+v", keyA, status[keyA], keyB, status[keyB])
	if len(resB.Lost) > 0 || len(resA.Lost) > 0 {
		t.Errorf("sessions lost: A %v, B %v", resA.Lost, resB.Lost)
	}
	if termB.Opened < 8 || termB.Committed != termB.Opened || termB.Aborted != 0 || len(termB.Wrong) > 0 {
		t.Errorf("tenant B's turns did not all commit: opened %d, committed %d, aborted %d %v, wrong %v",
			termB.Opened, termB.Committed, termB.Aborted, termB.AbortReasons, termB.Wrong)
	}
	if termA.Aborted == 0 || len(termA.Wrong) > 0 {
		t.Errorf("tenant A's crashing node aborted none of its turns (%d) or broke terminals %v: the test proves nothing", termA.Aborted, termA.Wrong)
	}
	b, ok := status[keyB]
	if !ok {
		t.Fatalf("no pool %s among %v", keyB, status)
	}
	if len(b.Crashes) > 0 || b.Restarts > 0 || b.Circuit != "" {
		t.Errorf("tenant B's pool saw A's trouble: crashes %v, restarts %d, circuit %q", b.Crashes, b.Restarts, b.Circuit)
	}
	if a := status[keyA]; a.Circuit == "" || a.Crashes["exit"] < 3 {
		t.Errorf("tenant A's pool: crashes %v, circuit %q; want its circuit open after 3+ exits", a.Crashes, a.Circuit)
	}
	for _, ev := range evs.All() {
		switch {
		case (ev.Type == "crashed" || ev.Type == "circuit_open" || ev.Type == "restart_scheduled") && ev.Pool != keyA:
			t.Errorf("%s in pool %s (only %s crashes)", ev.Type, ev.Pool, keyA)
		case ev.Type == "ready" && strings.HasPrefix(ev.Pool, "tts#") && !slices.Contains([]string{keyA, keyB, "tts#1/probe"}, ev.Pool):
			t.Errorf("unexpected tts pool %s", ev.Pool)
		}
	}
	evs.Wait(t, "circuit_open of A", func(ev pool.Event) bool { return ev.Type == "circuit_open" && ev.Pool == keyA })
}

// Tenant pools start on first use and stop when idle; share: session
// gives every session its own pool, stopped when the session closes. A
// hot upgrade of a tenant provider moves each tenant to the new
// generation at the next turn, drains the old tenant pools, and fails no
// turn.
func TestTenantPoolsLazyIdleAndUpgraded(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time sessions")
	}
	dir, bin := tenantBinary(t)
	cfgPath := tenantConfig(t, dir, bin, map[string]string{
		"tts": "profile: tenant\nidle_timeout: 300ms",
		"llm": "profile: tenant\nshare: session",
	})
	var (
		mu    sync.Mutex
		ready = map[string]time.Time{} // pool -> first ready
		stops = map[string]bool{}
	)
	rt := startTenantRuntime(t, cfgPath, bin, func(ev pool.Event) {
		mu.Lock()
		defer mu.Unlock()
		switch ev.Type {
		case "ready":
			if _, ok := ready[ev.Pool]; !ok {
				ready[ev.Pool] = time.Now()
			}
		case "stopped":
			stops[ev.Pool] = true
		}
	})
	for _, st := range rt.Status() {
		if st.Provider != "stt" {
			t.Fatalf("pool %s running before any session", st.Key)
		}
	}
	tl := &session.Collector{}
	done := make(chan Result, 1)
	go func() {
		done <- Run(context.Background(), rt, Options{Sessions: 3, Utterances: [][]byte{testplugin.Tone(400 * time.Millisecond)},
			Gap: 2 * time.Second, Turns: 4, Realtime: true, Polite: true, Stagger: 30 * time.Millisecond,
			Tenants: []string{"x", "y", "x"}, Prefix: "k", Timeline: tl})
	}()
	// Upgrade once the tenants' pools serve turns.
	for deadline := time.Now().Add(30 * time.Second); rt.TenantPool("tts", "x") == nil || rt.TenantPool("tts", "y") == nil; {
		if time.Now().After(deadline) {
			t.Fatal("tenant tts pools never started")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(time.Second)
	oldPids := append(rt.TenantPool("tts", "x").Pids(), rt.TenantPool("tts", "y").Pids()...)
	upgrading := time.Now()
	res, err := rt.Upgrade(context.Background(), "tts", bin)
	if err != nil {
		t.Fatal(err)
	}
	if res.OldKey != "tts#1" || res.NewKey != "tts#2" {
		t.Fatalf("upgrade %+v", res)
	}
	lr := <-done
	term := CountTerminals(tl.Records())
	t.Logf("turns opened %d, committed %d, aborted %d %v; pools started %v", term.Opened, term.Committed, term.Aborted, term.AbortReasons, keys(ready))
	if len(lr.Lost) > 0 || term.Aborted > 0 || term.Committed != term.Opened || len(term.Wrong) > 0 || term.Opened < 9 {
		t.Fatalf("turns failed: lost %v, opened %d, committed %d, aborted %d %v, wrong %v", lr.Lost, term.Opened, term.Committed, term.Aborted, term.AbortReasons, term.Wrong)
	}
	mu.Lock()
	for _, want := range []string{"tts#1/tenant=x", "tts#1/tenant=y", "tts#2/tenant=x", "tts#2/tenant=y",
		"llm#1/tenant=x/session=k-1", "llm#1/tenant=y/session=k-2", "llm#1/tenant=x/session=k-3"} {
		at, ok := ready[want]
		switch {
		case !ok:
			t.Errorf("pool %s never started", want)
		case strings.HasPrefix(want, "tts#2/") && at.Before(upgrading):
			t.Errorf("pool %s started before the upgrade", want)
		}
	}
	var tts int
	for k := range ready {
		if strings.HasPrefix(k, "tts#") && !strings.HasSuffix(k, "/probe") {
			tts++
		}
	}
	if tts != 4 {
		t.Errorf("tts pools %v: want one per tenant and generation (sessions k-1 and k-3 of tenant x share one)", keys(ready))
	}
	mu.Unlock()
	// Old generation drained; everything idle stops.
	deadline := time.Now().Add(20 * time.Second)
	for len(rt.Status()) > 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	for _, st := range rt.Status() {
		if st.Provider != "stt" {
			t.Errorf("pool %s still running with no session", st.Key)
		}
	}
	for _, pid := range oldPids {
		if externalnode.ProcessAlive(pid) {
			t.Errorf("old generation's tenant plugin %d still alive", pid)
		}
	}
	for _, k := range []string{"tts#1/tenant=x", "tts#2/tenant=y", "llm#1/tenant=x/session=k-1"} {
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			mu.Lock()
			stopped := stops[k]
			mu.Unlock()
			if stopped {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("pool %s never stopped", k)
				break
			}
		}
	}
	// A bad tenant id is a typed error, and opens nothing.
	if _, err := rt.OpenSession(supervisor.SessionOptions{ID: "bad", TenantID: "../etc"}); err == nil || !strings.Contains(err.Error(), supervisor.ErrBadTenant.Error()) {
		t.Errorf("tenant ../etc: %v", err)
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
