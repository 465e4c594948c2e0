// Package isolation_test runs the hostile node (test/hostile) under the
// tenant profile, one attack per run, next to an honest session, and says
// which attempt was blocked by what.
package isolation_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/isolation"
	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/kernel/eventabi"
)

// The test binary is also the sandbox entry point (re-executed by the
// tenant RunnerFunc).
func TestMain(m *testing.M) {
	isolation.MaybeSandboxMain()
	code := m.Run()
	if workDir != "" {
		_ = os.RemoveAll(workDir)
	}
	os.Exit(code)
}

var (
	buildOnce        sync.Once
	workDir, hostile string
	entry            string
	buildErr         error
)

// binaries builds test/hostile (CGO_ENABLED=0) and copies the test binary
// as entry point into a directory the sandbox user can traverse.
func binaries(t *testing.T) (hostileBin, entryBin string) {
	t.Helper()
	buildOnce.Do(func() {
		if workDir, buildErr = os.MkdirTemp("", "rspp-hostile-"); buildErr != nil {
			return
		}
		_ = os.Chmod(workDir, 0o755)
		hostile = filepath.Join(workDir, "hostile")
		cmd := exec.Command("go", "build", "-o", hostile, "github.com/rspp/rspp/test/hostile")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build hostile: %v\n%s", err, out)
			return
		}
		self, err := os.ReadFile(os.Args[0])
		if err != nil {
			buildErr = err
			return
		}
		entry = filepath.Join(workDir, "entry")
		buildErr = os.WriteFile(entry, self, 0o755)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return hostile, entry
}

type world struct {
	es       *isolation.Envelopes
	profile  isolation.Profile
	sockets  string
	scratch  string
	secret   string
	outside  string
	tcp      string
	unix     string // a 0666 unix socket of the host
	declared string // a file under the profile's read_paths
	repo     string
}

func setup(t *testing.T) *world {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the tenant profile creates cgroups and user/pid/net namespaces")
	}
	if isolation.LandlockABI() < 6 {
		t.Skipf("needs landlock ABI >= 6 (have %d): signal scoping is part of the tenant profile", isolation.LandlockABI())
	}
	es, err := isolation.OpenEnvelopes(isolation.EnvelopesConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = es.Close() })
	dir, err := os.MkdirTemp("", "rspp-hostile-run-")
	if err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(dir, 0o755)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	for _, d := range []string{"sockets", "scratch", "etc"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	secret := filepath.Join(dir, "etc", "rspp.json")
	if err := os.WriteFile(secret, []byte(`{"api_key":"s3cret"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	// A host service on a world-connectable pathname socket (like
	// /dev/log or D-Bus on a normal host).
	unixPath := filepath.Join(dir, "host.sock")
	uln, err := net.Listen("unix", unixPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = uln.Close() })
	if err := os.Chmod(unixPath, 0o666); err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := uln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	if c, err := net.Dial("unix", unixPath); err != nil {
		t.Fatalf("host socket not connectable from the host: %v", err)
	} else {
		_ = c.Close()
	}
	declaredDir := filepath.Join(dir, "models")
	if err := os.Mkdir(declaredDir, 0o755); err != nil {
		t.Fatal(err)
	}
	declared := filepath.Join(declaredDir, "model.txt")
	if err := os.WriteFile(declared, []byte("weights v1"), 0o644); err != nil {
		t.Fatal(err)
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	p, err := isolation.ProfileByName("tenant", isolation.Override{ScratchRoot: filepath.Join(dir, "scratch"), ReadPaths: []string{declaredDir}})
	if err != nil {
		t.Fatal(err)
	}
	return &world{es: es, profile: p, sockets: filepath.Join(dir, "sockets"), scratch: filepath.Join(dir, "scratch"), secret: secret,
		outside: filepath.Join(dir, "etc", "pwned"), tcp: ln.Addr().String(), unix: unixPath, declared: declared, repo: repo}
}

// start runs test/hostile with one behaviour in its own tenant envelope.
func (w *world) start(t *testing.T, name, behaviour string) (*externalnode.Instance, *isolation.Envelope, error) {
	t.Helper()
	bin, entryBin := binaries(t)
	env, err := w.es.New(name, "tenant-"+name, w.profile.Limits)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Close() })
	p := w.profile
	p.EntryPath = entryBin
	target := isolation.Target{Binary: bin, Env: []string{
		"RSPP_HOSTILE=" + behaviour, "HOSTILE_TCP=" + w.tcp, "HOSTILE_SECRET=" + w.secret,
		"HOSTILE_OUTSIDE=" + w.outside, "HOSTILE_HOST_PID=" + strconv.Itoa(os.Getpid()),
		"HOSTILE_UNIX=" + w.unix, "HOSTILE_DECLARED=" + w.declared, "HOSTILE_REPO=" + w.repo, "HOSTILE_PEERS=" + w.sockets,
	}}
	inst, err := externalnode.Start(context.Background(), externalnode.StartConfig{
		Name: name, Binary: bin, Runner: p.RunnerFunc(env, target), SkipHostEnv: p.SkipHostEnv,
		SocketDir: w.sockets, StartTimeout: 20 * time.Second, Stderr: io.Discard,
	})
	if err == nil {
		t.Cleanup(inst.Kill)
	}
	return inst, env, err
}

type outcome struct {
	events []eventabi.Event
	err    error
	late   int // events after the end
}

// invoke runs one invocation with one input and waits for its end.
func invoke(t *testing.T, inst *externalnode.Instance, session, id string, cancelAfter time.Duration) *outcome {
	t.Helper()
	var mu sync.Mutex
	o := &outcome{}
	ended := make(chan struct{})
	done := false
	c, err := inst.Open(externalnode.OpenRequest{InvocationID: id, SessionID: session, TurnID: id, NodeID: "n"}, externalnode.Handler{
		OnEvent: func(ev eventabi.Event) {
			mu.Lock()
			defer mu.Unlock()
			if done {
				o.late++
				return
			}
			o.events = append(o.events, ev)
		},
		OnEnd: func(err error) {
			mu.Lock()
			o.err, done = err, true
			mu.Unlock()
			close(ended)
		},
	})
	if err != nil {
		return &outcome{err: err}
	}
	_ = c.Send(eventabi.Event{Type: eventabi.TypeTextDelta, Text: &eventabi.Text{Text: "hello " + id}})
	_ = c.CloseInput()
	if cancelAfter > 0 {
		time.Sleep(cancelAfter)
		_ = c.Cancel("barge_in")
	}
	select {
	case <-ended:
	case <-time.After(20 * time.Second):
		t.Fatalf("invocation %s did not end", id)
	}
	time.Sleep(300 * time.Millisecond) // let late output arrive, if any
	mu.Lock()
	defer mu.Unlock()
	return o
}

// honestTurns runs turns on an honest instance until stop, returning how
// many completed and the first failure.
func honestTurns(t *testing.T, inst *externalnode.Instance, stop <-chan struct{}) (int, error) {
	n := 0
	for {
		select {
		case <-stop:
			if n == 0 {
				o := invoke(t, inst, "honest-session", "honest-last", 0)
				if o.err != nil {
					return n, o.err
				}
				n++
			}
			return n, nil
		default:
		}
		id := "honest-" + strconv.Itoa(n)
		o := invoke(t, inst, "honest-session", id, 0)
		if o.err != nil {
			return n, fmt.Errorf("turn %s: %w", id, o.err)
		}
		if len(o.events) != 1 || o.events[0].Text == nil || o.events[0].Text.Text != "hello "+id || o.events[0].SessionID != "honest-session" {
			return n, fmt.Errorf("turn %s: wrong output %v", id, o.events)
		}
		n++
	}
}

func TestHostileNodeIsContained(t *testing.T) {
	w := setup(t)
	honest, _, err := w.start(t, "honest", "honest")
	if err != nil {
		t.Fatalf("honest node: %v", err)
	}
	cases := []struct {
		behaviour string
		cancel    time.Duration
		check     func(t *testing.T, o *outcome, inst *externalnode.Instance, env *isolation.Envelope) string
	}{
		{"memory", 0, func(t *testing.T, o *outcome, inst *externalnode.Instance, env *isolation.Envelope) string {
			var le *isolation.LimitError
			if !errors.As(env.Failure(), &le) || !errors.Is(le, isolation.ErrOOM) || !errors.Is(o.err, kernel.ErrNodeCrashed) {
				t.Errorf("memory bomb: end %v, envelope %v; want crash attributed as ErrOOM", o.err, env.Failure())
			}
			return fmt.Sprintf("memory cgroup OOM kill, attributed: %v", env.Failure())
		}},
		{"forkbomb", 0, func(t *testing.T, o *outcome, _ *externalnode.Instance, env *isolation.Envelope) string {
			st, _ := env.Stats()
			if st.PidsLimitHits == 0 || st.Pids > uint64(w.profile.Limits.Pids) {
				t.Errorf("fork bomb: stats %+v", st)
			}
			return fmt.Sprintf("pids.max=%d (%s), attributed: %v", st.PidsLimit, text(o), env.Failure())
		}},
		{"cpu", 0, func(t *testing.T, o *outcome, _ *externalnode.Instance, env *isolation.Envelope) string {
			st, _ := env.Stats()
			if st.CPUThrottled == 0 {
				t.Errorf("cpu spin never throttled: %+v", st)
			}
			return fmt.Sprintf("cpu quota %.2f cores: throttled %d periods (%v)", w.profile.Limits.CPUCores, st.CPUThrottled, time.Duration(st.CPUThrottledNanos))
		}},
		{"tcp", 0, blockedBy("net namespace (no route) + landlock TCP connect")},
		{"readfile", 0, blockedBy("sealed root (not mounted) + landlock read allowlist")},
		{"write", 0, blockedBy("sealed root (not mounted, root read-only) + landlock: writable only in scratch")},
		{"unixsocket", 0, blockedBy("sealed root: the host's socket is not in the tenant's filesystem")},
		{"mountinfo", 0, w.checkMountinfo},
		{"clone", 0, func(t *testing.T, o *outcome, _ *externalnode.Instance, _ *isolation.Envelope) string {
			s := text(o)
			if !strings.Contains(s, "clone=operation not permitted") || !strings.Contains(s, "clone3=function not implemented") {
				t.Errorf("clone with namespace flags not refused by seccomp: %q (end %v)", s, o.err)
			}
			return "blocked by seccomp: clone with CLONE_NEW* is EPERM, clone3 is ENOSYS (" + s + ")"
		}},
		{"listing", 0, w.checkListing},
		{"readpaths", 0, func(t *testing.T, o *outcome, _ *externalnode.Instance, _ *isolation.Envelope) string {
			s := text(o)
			if !strings.Contains(s, `read=ok content="weights v1"`) || strings.Contains(s, "write=ok") {
				t.Errorf("declared read path: %q, want readable and not writable", s)
			}
			if b, _ := os.ReadFile(w.declared); string(b) != "weights v1" {
				t.Errorf("declared file changed from inside: %q", b)
			}
			return "declared read_paths readable, bind-mounted read-only (" + s + ")"
		}},
		{"peers", 0, func(t *testing.T, o *outcome, _ *externalnode.Instance, _ *isolation.Envelope) string {
			s := text(o)
			if ents, _ := os.ReadDir(w.sockets); len(ents) < 2 {
				t.Errorf("probe proves nothing: the host's socket root holds %d instance dirs, want the honest one too", len(ents))
			}
			if !strings.Contains(s, "others=[]") || !strings.Contains(s, "connected=[]") {
				t.Errorf("another instance's socket dir is visible or reachable: %q", s)
			}
			return "blocked by sealed root: only its own socket dir is mounted (" + s + ")"
		}},
		{"signal", 0, blockedBy("pid namespace (supervisor invisible) + landlock signal scope + seccomp ptrace")},
		{"rawsocket", 0, blockedBy("seccomp socket(SOCK_RAW) + no capabilities")},
		{"oversized", 0, func(t *testing.T, o *outcome, inst *externalnode.Instance, _ *isolation.Envelope) string {
			if o.err == nil || len(o.events) != 0 {
				t.Errorf("oversized message accepted: %d events, end %v", len(o.events), o.err)
			}
			return fmt.Sprintf("gRPC max message size %d: %v", externalnode.MaxMessageBytes, o.err)
		}},
		{"malformed", 0, func(t *testing.T, o *outcome, _ *externalnode.Instance, _ *isolation.Envelope) string {
			for _, ev := range o.events {
				if verr := eventabi.Validate(&ev, eventabi.Limits{}); verr == nil {
					t.Errorf("malformed event passes validation: %v", ev)
				}
			}
			return fmt.Sprintf("only its own invocation sees it (end %v, %d events, each failing eventabi.Validate)", o.err, len(o.events))
		}},
		{"wrongsession", 0, func(t *testing.T, o *outcome, _ *externalnode.Instance, _ *isolation.Envelope) string {
			return fmt.Sprintf("routed by invocation id, never to the honest session (%d events on its own call, end %v); kernel gateway rejects foreign ids (ErrCorrelation)", len(o.events), o.err)
		}},
		{"aftercancel", 200 * time.Millisecond, func(t *testing.T, o *outcome, _ *externalnode.Instance, _ *isolation.Envelope) string {
			if o.late != 0 {
				t.Errorf("%d events delivered after the invocation ended", o.late)
			}
			if !errors.Is(o.err, kernel.ErrCancelled) {
				t.Errorf("end = %v, want cancelled", o.err)
			}
			return fmt.Sprintf("dropped after cancel (%d late events delivered, end %v)", o.late, o.err)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.behaviour, func(t *testing.T) {
			stop := make(chan struct{})
			type res struct {
				n   int
				err error
			}
			hr := make(chan res, 1)
			go func() { n, err := honestTurns(t, honest, stop); hr <- res{n, err} }()
			inst, env, err := w.start(t, "hostile-"+tc.behaviour, tc.behaviour)
			var how string
			if err != nil {
				t.Fatalf("start: %v", err)
			}
			o := invoke(t, inst, "hostile-session", "hostile-"+tc.behaviour, tc.cancel)
			how = tc.check(t, o, inst, env)
			close(stop)
			h := <-hr
			if h.err != nil || h.n == 0 {
				t.Errorf("honest session disturbed: %d turns, %v", h.n, h.err)
			}
			t.Logf("%-12s contained: %s; honest session completed %d turns meanwhile", tc.behaviour, how, h.n)
		})
	}
	t.Run("garbage", func(t *testing.T) {
		_, _, err := w.start(t, "hostile-garbage", "garbage")
		if err == nil || !errors.Is(err, kernel.ErrProtocol) {
			t.Fatalf("garbage before handshake: %v, want a protocol error", err)
		}
		if _, herr := honest.Health(context.Background()); herr != nil {
			t.Errorf("honest node hurt: %v", herr)
		}
		t.Logf("garbage      contained: go-plugin handshake refused it: %v", firstLine(err.Error()))
	})
	if _, err := os.Stat(w.outside); err == nil {
		t.Errorf("a file was written outside the scratch dir")
	}
}

// checkMountinfo: the tenant sees none of the host's mounts, only its
// sealed root's.
func (w *world) checkMountinfo(t *testing.T, o *outcome, _ *externalnode.Instance, _ *isolation.Envelope) string {
	s := text(o)
	points, ok := strings.CutPrefix(s, "mountinfo: ")
	if !ok {
		t.Errorf("mountinfo probe: %q (end %v)", s, o.err)
		return s
	}
	host, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	hostPoints := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(string(host)), "\n") {
		if f := strings.Fields(l); len(f) > 4 && f[4] != "/" && f[4] != "/proc" {
			hostPoints[f[4]] = true
		}
	}
	bin, _ := binaries(t)
	allowed := func(p string) bool {
		switch p {
		case "/", "/proc", bin, "/dev/null", "/dev/zero", "/dev/urandom", filepath.Dir(w.declared):
			return true
		}
		tz, _ := filepath.EvalSymlinks("/etc/localtime")
		return p == tz || strings.HasPrefix(p, w.scratch+"/") || strings.HasPrefix(p, w.sockets+"/")
	}
	for _, p := range strings.Fields(points) {
		if hostPoints[p] {
			t.Errorf("tenant sees the host mount %s", p)
		}
		if !allowed(p) {
			t.Errorf("tenant sees a mount that is not part of its sealed root: %s", p)
		}
	}
	return fmt.Sprintf("blocked by sealed root (own mount namespace, pivot_root): %d mounts seen, none of the host's %d (%s)", len(strings.Fields(points)), len(hostPoints), points)
}

// checkListing: the root dir holds only what the sealed root was given,
// and host files and the repository are not there.
func (w *world) checkListing(t *testing.T, o *outcome, _ *externalnode.Instance, _ *isolation.Envelope) string {
	s := text(o)
	for _, want := range []string{"passwd=open /etc/passwd: no such file", "root=open /root: no such file", "repo=open " + w.repo + ": no such file"} {
		if !strings.Contains(s, want) {
			t.Errorf("listing probe: want %q in %q", want, s)
		}
	}
	bin, _ := binaries(t)
	top := map[string]bool{"proc": true, "dev": true, "etc": true, "usr": true}
	for _, p := range []string{bin, w.scratch, w.sockets, w.declared} {
		top[strings.SplitN(strings.TrimPrefix(p, "/"), "/", 2)[0]] = true
	}
	if i, j := strings.Index(s, "/=["), strings.Index(s, "]"); i >= 0 && j > i {
		for _, name := range strings.Fields(s[i+3 : j]) {
			if !top[name] {
				t.Errorf("tenant's / lists %q, which holds nothing it was given", name)
			}
		}
	} else {
		t.Errorf("listing probe: %q", s)
	}
	return "blocked by sealed root: only declared paths exist (" + s + ")"
}

func blockedBy(by string) func(*testing.T, *outcome, *externalnode.Instance, *isolation.Envelope) string {
	return func(t *testing.T, o *outcome, _ *externalnode.Instance, _ *isolation.Envelope) string {
		s := text(o)
		if o.err != nil || s == "" || strings.Contains(s, ": ok") || strings.Contains(s, "=ok") {
			t.Errorf("attempt not blocked: %q (end %v)", s, o.err)
		}
		return "blocked by " + by + " (" + s + ")"
	}
}

func text(o *outcome) string {
	var parts []string
	for _, ev := range o.events {
		if ev.Text != nil {
			parts = append(parts, ev.Text.Text)
		}
	}
	return strings.Join(parts, "; ")
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
