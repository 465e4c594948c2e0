package pool

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/rspp/rspp/supervisor/internal/testplugin"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/isolation"
	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/kernel/eventabi"
)

func testPool(t testing.TB, mod func(*Config)) (*Pool, *testplugin.EventLog[Event]) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	log := testplugin.NewEventLog[Event]()
	cfg := Config{
		Key: "echo#1", Provider: "echo", Warm: 2, ConfigJSON: []byte(`{"role":"echo"}`),
		Launch:    Launch{Binary: self, Args: []string{testplugin.Arg}, SocketDir: t.TempDir()},
		KillGrace: 300 * time.Millisecond, HealthInterval: -1, Events: log.Add,
		Restart: RestartPolicy{BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond},
	}
	if mod != nil {
		mod(&cfg)
	}
	p, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Close()
		// go-plugin's socket dirs go with their instances, crashed or not.
		if left, _ := os.ReadDir(cfg.Launch.SocketDir); len(left) > 0 {
			t.Errorf("socket dirs left behind: %v", left)
		}
	})
	return p, log
}

// openEcho opens an invocation and returns a channel with its end error.
func openEcho(t testing.TB, p *Pool, id string, avoid []string) (*Call, chan error) {
	t.Helper()
	end := make(chan error, 1)
	c, err := p.Open(externalnode.OpenRequest{InvocationID: id, SessionID: "s", TurnID: "t", NodeID: "echo"}, avoid,
		externalnode.Handler{OnEvent: func(eventabi.Event) {}, OnEnd: func(err error) { end <- err }})
	if err != nil {
		t.Fatal(err)
	}
	return c, end
}

func TestPoolSIGKILLIsTypedCrashAndReplaced(t *testing.T) {
	p, log := testPool(t, nil)
	c, end := openEcho(t, p, "inv-1", nil)
	victim := p.PoolInstance(c.Instance())
	if err := syscall.Kill(victim.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := <-end
	var ce *CrashError
	if !errors.As(err, &ce) || ce.Kind != CrashSignal || !errors.Is(err, kernel.ErrNodeCrashed) {
		t.Fatalf("in-flight invocation ended with %v, want a signal CrashError (kernel.ErrNodeCrashed)", err)
	}
	if victim.State() != Crashed {
		t.Fatalf("victim state %s, want crashed", victim.State())
	}
	log.Wait(t, "crashed", func(ev Event) bool { return ev.Type == "crashed" && ev.Instance == victim.Name() })
	log.Wait(t, "replacement ready", func(ev Event) bool { return ev.Type == "ready" && ev.Instance == "echo#1.3" })
	// A retry avoiding nothing in particular still never gets the dead one.
	c2, _ := openEcho(t, p, "inv-2", []string{victim.Name()})
	if c2.Instance() == victim.Name() {
		t.Fatal("acquired the dead instance")
	}
	if got := p.Status().Crashes["signal"]; got != 1 {
		t.Fatalf("signal crashes %d, want 1", got)
	}
}

func TestPoolRetryAvoidsFailedInstance(t *testing.T) {
	p, _ := testPool(t, nil)
	c1, _ := openEcho(t, p, "inv-1", nil)
	for i := range 5 {
		c, _ := openEcho(t, p, "retry-"+string(rune('a'+i)), []string{c1.Instance()})
		if c.Instance() == c1.Instance() {
			t.Fatalf("retry landed on the avoided instance %s", c.Instance())
		}
		c.Cancel("test")
	}
}

func TestPoolKillsHungInstanceAfterGrace(t *testing.T) {
	hang := filepath.Join(testplugin.SignalDir(t), "hang")
	p, log := testPool(t, func(c *Config) {
		c.Warm = 1
		c.ConfigJSON = []byte(`{"role":"echo","hang_file":"` + hang + `"}`)
	})
	if err := os.WriteFile(hang, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	stuck, stuckEnd := openEcho(t, p, "stuck", nil)
	// Wait until the plugin took the hang (it removes the file).
	for i := 0; ; i++ {
		if _, err := os.Stat(hang); os.IsNotExist(err) {
			break
		}
		if i > 3000 {
			t.Fatal("plugin never started the hanging invocation")
		}
		time.Sleep(time.Millisecond)
	}
	_, otherEnd := openEcho(t, p, "bystander", nil)
	stuck.Cancel("timeout")
	ev := log.Wait(t, "crashed", func(ev Event) bool { return ev.Type == "crashed" })
	if ev.Crash.Kind != CrashHung || !errors.Is(ev.Crash, ErrHung) || !errors.Is(ev.Crash, kernel.ErrNodeCrashed) {
		t.Fatalf("crash %v, want kind hung", ev.Crash)
	}
	if err := <-otherEnd; !errors.Is(err, ErrHung) {
		t.Fatalf("bystander invocation ended with %v, want ErrHung", err)
	}
	select {
	case err := <-stuckEnd:
		t.Fatalf("cancelled call reported an end (%v): it was forgotten", err)
	default:
	}
	log.Wait(t, "replacement ready", func(ev Event) bool { return ev.Type == "ready" && ev.Instance == "echo#1.2" })
}

func TestPoolCircuitOpensPastIntensity(t *testing.T) {
	p, log := testPool(t, func(c *Config) {
		c.Warm = 1
		c.Restart = RestartPolicy{Intensity: 2, Period: time.Minute, BackoffBase: time.Millisecond, Cooldown: -1}
	})
	for i := range 3 {
		insts := p.Instances()
		for len(insts) == 0 {
			time.Sleep(5 * time.Millisecond)
			insts = p.Instances()
		}
		_ = syscall.Kill(insts[0].Pid(), syscall.SIGKILL)
		log.Wait(t, "crash", func(ev Event) bool { return ev.Type == "crashed" && ev.Instance == insts[0].Name() })
		_ = i
	}
	log.Wait(t, "circuit_open", func(ev Event) bool { return ev.Type == "circuit_open" })
	_, err := p.Acquire(nil)
	if !errors.Is(err, ErrCircuitOpen) || !errors.Is(err, kernel.ErrNodeUnavailable) {
		t.Fatalf("Acquire with the circuit open: %v", err)
	}
	if p.Status().Circuit == "" {
		t.Fatal("status does not show the open circuit")
	}
}

func TestPoolHandshakeFailureIsTyped(t *testing.T) {
	_, err := Start(context.Background(), Config{Key: "bad#1", Provider: "bad",
		Launch: Launch{Binary: "/bin/true", SocketDir: t.TempDir(), StartTimeout: 5 * time.Second}, HealthInterval: -1})
	var ce *CrashError
	if !errors.As(err, &ce) || ce.Kind != CrashHandshake {
		t.Fatalf("start of a non-plugin: %v, want a handshake CrashError", err)
	}
}

func TestPoolHealthCheckKillsStoppedInstance(t *testing.T) {
	p, log := testPool(t, func(c *Config) {
		c.Warm = 1
		c.HealthInterval, c.HealthTimeout, c.HealthFailures = 50*time.Millisecond, 100*time.Millisecond, 2
	})
	victim := p.Instances()[0]
	_ = syscall.Kill(victim.Pid(), syscall.SIGSTOP)
	ev := log.Wait(t, "crashed", func(ev Event) bool { return ev.Type == "crashed" })
	if ev.Crash.Kind != CrashHung {
		t.Fatalf("stopped plugin crash kind %s, want hung", ev.Crash.Kind)
	}
	log.Wait(t, "replacement", func(ev Event) bool { return ev.Type == "ready" && ev.Instance != victim.Name() })
}

func TestPoolInIsolationEnvelope(t *testing.T) {
	envs, err := isolation.OpenEnvelopes(isolation.EnvelopesConfig{})
	if err != nil {
		t.Skipf("no cgroup envelopes here: %v", err)
	}
	t.Cleanup(func() { _ = envs.Close() }) // after the pool's own cleanup
	prof, err := isolation.ProfileByName("trusted")
	if err != nil {
		t.Fatal(err)
	}
	p, _ := testPool(t, func(c *Config) {
		c.Warm = 1
		c.Launch.Envelopes, c.Launch.Profile = envs, prof
	})
	inst := p.Instances()[0]
	pids, err := inst.env.Pids()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, pid := range pids {
		found = found || pid == inst.Pid()
	}
	if !found {
		t.Fatalf("plugin pid %d not in its envelope (%v)", inst.Pid(), pids)
	}
	_, end := openEcho(t, p, "x", nil)
	_ = syscall.Kill(inst.Pid(), syscall.SIGKILL)
	if err := <-end; !errors.Is(err, kernel.ErrNodeCrashed) {
		t.Fatalf("end %v", err)
	}
}

// An instance its envelope's memory limit OOM-kills is a crash of kind
// oom: its invocations fail with kernel.ErrResourceLimit attributed to the
// instance and tenant.
func TestPoolOOMIsResourceLimit(t *testing.T) {
	envs, err := isolation.OpenEnvelopes(isolation.EnvelopesConfig{})
	if err != nil {
		t.Skipf("no cgroup envelopes here: %v", err)
	}
	t.Cleanup(func() { _ = envs.Close() })
	prof, err := isolation.ProfileByName("trusted", isolation.Override{Limits: isolation.Limits{MemoryBytes: 192 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	oom := filepath.Join(testplugin.SignalDir(t), "oom")
	p, log := testPool(t, func(c *Config) {
		c.Warm = 1
		c.Launch.Envelopes, c.Launch.Profile, c.Launch.Tenant = envs, prof, "acme"
		c.ConfigJSON = []byte(`{"role":"echo","oom_file":"` + oom + `"}`)
	})
	if err := os.WriteFile(oom, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, end := openEcho(t, p, "hog", nil)
	err = <-end
	var le *isolation.LimitError
	if !errors.Is(err, kernel.ErrResourceLimit) || !errors.Is(err, isolation.ErrOOM) || !errors.As(err, &le) || le.Tenant != "acme" {
		t.Fatalf("invocation on the OOM-killed instance ended with %v, want ErrResourceLimit/ErrOOM for tenant acme", err)
	}
	ev := log.Wait(t, "crashed", func(ev Event) bool { return ev.Type == "crashed" })
	if ev.Crash.Kind != CrashOOM || ev.Crash.Tenant != "acme" {
		t.Fatalf("crash %+v, want kind oom for tenant acme", ev.Crash)
	}
}

func TestInstanceStateMachine(t *testing.T) {
	ok := [][2]State{{Starting, Ready}, {Starting, Crashed}, {Ready, Draining}, {Ready, Crashed}, {Draining, Stopped}, {Draining, Crashed}}
	bad := [][2]State{{Ready, Starting}, {Stopped, Ready}, {Crashed, Ready}, {Draining, Ready}, {Stopped, Crashed}, {Crashed, Stopped}}
	for _, m := range ok {
		i := &Instance{state: m[0]}
		if err := i.move(m[1]); err != nil {
			t.Errorf("%s -> %s: %v", m[0], m[1], err)
		}
	}
	for _, m := range bad {
		i := &Instance{state: m[0]}
		if err := i.move(m[1]); !errors.Is(err, ErrBadTransition) {
			t.Errorf("%s -> %s allowed", m[0], m[1])
		}
	}
}

// With nothing else coming (the pool is at full strength), a retry that
// avoids the only instance takes it rather than waiting for another.
func TestPoolAvoidedInstanceIsLastResort(t *testing.T) {
	p, _ := testPool(t, func(c *Config) { c.Warm = 1; c.AcquireWait = time.Hour })
	only := p.Instances()[0]
	got := make(chan *Instance, 1)
	go func() {
		inst, _ := p.Acquire([]string{only.Name()})
		got <- inst
	}()
	select {
	case inst := <-got:
		if inst != only {
			t.Fatalf("acquired %v", inst)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Acquire waited for an instance that is not coming")
	}
}
