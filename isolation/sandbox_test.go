package isolation_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/rspp/rspp/isolation"
)

var (
	binsOnce          sync.Once
	entryBin, plugBin string
	binsDir           string
	binsErr           error
)

// testBinaries copies the test binary twice into a world-readable
// directory: once as the sandbox entry point and once (one byte longer, so
// its checksum differs) as the plugin. The go test build directory is 0700
// root, which the tenant's unprivileged user could not traverse.
func testBinaries(t testing.TB) (entry, plug string) {
	t.Helper()
	binsOnce.Do(func() {
		binsDir, binsErr = os.MkdirTemp("", "rspp-isolation-bin-")
		if binsErr != nil {
			return
		}
		if binsErr = os.Chmod(binsDir, 0o755); binsErr != nil {
			return
		}
		self, err := os.ReadFile(os.Args[0])
		if err != nil {
			binsErr = err
			return
		}
		entryBin, plugBin = filepath.Join(binsDir, "entry"), filepath.Join(binsDir, "plugin")
		if binsErr = os.WriteFile(entryBin, self, 0o755); binsErr != nil {
			return
		}
		binsErr = os.WriteFile(plugBin, append(self, 0), 0o755)
	})
	if binsErr != nil {
		t.Fatal(binsErr)
	}
	return entryBin, plugBin
}

func removeTestBinaries() {
	if binsDir != "" {
		_ = os.RemoveAll(binsDir)
	}
}

// traversableDir is a temp dir any user may enter (t.TempDir's parent is
// 0700 root).
func traversableDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "rspp-isolation-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}

func sha(t *testing.T, path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return s[:]
}

// runSandboxed starts the plugin binary in helper mode through the
// profile's RunnerFunc without go-plugin and returns its stdout.
func runSandboxed(t *testing.T, p isolation.Profile, env *isolation.Envelope, mode string, secure *plugin.SecureConfig, extraEnv ...string) (string, error) {
	t.Helper()
	entry, plug := testBinaries(t)
	p.EntryPath = entry
	socketDir, err := os.MkdirTemp("", "plugin-dir")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(socketDir) })
	// What go-plugin would hand over: host env (unless SkipHostEnv) plus
	// its handshake variables.
	// Dir: a profile without a scratch dir runs the probe here, which
	// writes a file into its cwd (never into the package's directory).
	gp := &exec.Cmd{Dir: worldDir(t), Env: append(os.Environ(), "PLUGIN_PROTOCOL_VERSIONS=1", "PLUGIN_UNIX_SOCKET_DIR="+socketDir)}
	target := isolation.Target{Binary: plug, Env: append([]string{"RSPP_ISOLATION_HELPER=" + mode}, extraEnv...), Secure: secure}
	r, err := p.RunnerFunc(env, target)(hclog.NewNullLogger(), gp, socketDir)
	if err != nil {
		return "", err
	}
	ctx := context.Background()
	if err := r.Start(ctx); err != nil {
		return "", err
	}
	t.Cleanup(func() { _ = r.Kill(ctx); _ = r.Wait(ctx) })
	var errBuf strings.Builder
	done := make(chan struct{})
	go func() { _, _ = io.Copy(&errBuf, r.Stderr()); close(done) }()
	out, _ := io.ReadAll(r.Stdout())
	<-done
	werr := r.Wait(ctx)
	if werr != nil {
		return string(out), errors.Join(werr, errors.New(errBuf.String()))
	}
	return string(out), nil
}

// probeIn runs the probe under p (in a fresh envelope named name, or none
// when name is "") and returns its report and the envelope.
func probeIn(t *testing.T, p isolation.Profile, name string) (probeReport, *isolation.Envelope) {
	t.Helper()
	var env *isolation.Envelope
	if name != "" {
		es := openEnvelopes(t, isolation.EnvelopesConfig{})
		var err error
		if env, err = es.New(name, "", p.Limits); err != nil {
			t.Fatal(err)
		}
	}
	out, err := runSandboxed(t, p, env, "probe", nil)
	if err != nil {
		t.Fatalf("probe: %v\n%s", err, out)
	}
	var rep probeReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("probe output %q: %v", out, err)
	}
	return rep, env
}

func TestSandboxTrustedPlacesBeforeCodeRuns(t *testing.T) {
	p, err := isolation.ProfileByName("trusted")
	if err != nil {
		t.Fatal(err)
	}
	rep, env := probeIn(t, p, "probe-trusted")
	// The probe's very first action reads its cgroups: it already runs in
	// its envelope in every controller.
	for _, c := range []string{"memory", "pids", "cpu"} {
		if !strings.Contains(rep.Cgroup, c+":") || !cgroupLineHas(rep.Cgroup, c, env.Name()) {
			t.Fatalf("first instruction ran outside envelope %s for %s:\n%s", env.Name(), c, rep.Cgroup)
		}
	}
	if rep.NoNewPrivs != "1" {
		t.Fatalf("no_new_privs not set in trusted profile: %q", rep.NoNewPrivs)
	}
	// Not root: a uid of its own from the instance range.
	r := isolation.DefaultUIDRange
	if rep.UID < int(r.First) || rep.UID >= int(r.First+r.Count) || rep.EUID != rep.UID {
		t.Fatalf("trusted plugin runs as uid %d/%d, want one of %d..%d", rep.UID, rep.EUID, r.First, r.First+r.Count-1)
	}
	if rep.CapEff != "0000000000000000" {
		t.Fatalf("trusted plugin has capabilities %s", rep.CapEff)
	}
}

// A trusted plugin runs as its own uid, yet its scratch dir may sit under
// directories only root can traverse (the run's state dir): it gets the
// dir as its cwd and TMPDIR all the same, through a descriptor.
func TestSandboxTrustedScratchUnderPrivateDir(t *testing.T) {
	private, err := os.MkdirTemp("", "rspp-private-") // 0700, root's
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(private) })
	p, err := isolation.ProfileByName("trusted", isolation.Override{ScratchRoot: filepath.Join(private, "scratch")})
	if err != nil {
		t.Fatal(err)
	}
	rep, _ := probeIn(t, p, "probe-scratch")
	if rep.UID == 0 || rep.WriteScratch != "" || rep.WriteTMPDIR != "" {
		t.Fatalf("uid %d: writing its cwd: %q, its TMPDIR: %q", rep.UID, rep.WriteScratch, rep.WriteTMPDIR)
	}
}

// TestSandboxTrustedUserRoot: `user: root` keeps the runtime's uid.
func TestSandboxTrustedUserRoot(t *testing.T) {
	p, err := isolation.ProfileByName("trusted", isolation.Override{RunAsRoot: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep, _ := probeIn(t, p, ""); rep.UID != os.Geteuid() {
		t.Fatalf("user: root ran as uid %d, want the runtime's %d", rep.UID, os.Geteuid())
	}
	if _, err := isolation.ProfileByName("tenant", isolation.Override{RunAsRoot: true}); !errors.Is(err, isolation.ErrInvalidProfile) {
		t.Fatalf("tenant with user: root: %v, want ErrInvalidProfile", err)
	}
}

// TestSandboxInstancesGetTheirOwnUIDs: two live instances never share a
// uid, so one cannot signal the other.
func TestSandboxInstancesGetTheirOwnUIDs(t *testing.T) {
	p, _ := isolation.ProfileByName("trusted")
	seen := map[int]bool{}
	for i := 0; i < 3; i++ {
		out, err := runSandboxedLive(t, p, "probe-then-sleep")
		if err != nil {
			t.Fatal(err)
		}
		var rep probeReport
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("probe output %q: %v", out, err)
		}
		if seen[rep.UID] {
			t.Fatalf("uid %d handed to two live instances", rep.UID)
		}
		seen[rep.UID] = true
	}
}

func cgroupLineHas(cg, controller, name string) bool {
	for _, l := range strings.Split(cg, "\n") {
		f := strings.SplitN(l, ":", 3)
		if len(f) == 3 && strings.Contains(","+f[1]+",", ","+controller+",") {
			return strings.Contains(f[2], name)
		}
	}
	return false
}

// TestSandboxTenantContainsProbe runs the probe under the tenant profile and
// checks every attempt is blocked, naming what blocked it.
func TestSandboxTenantContainsProbe(t *testing.T) {
	es := openEnvelopes(t, isolation.EnvelopesConfig{})
	scratch := traversableDir(t) // the sandbox user must traverse it
	p, err := isolation.ProfileByName("tenant", isolation.Override{ScratchRoot: scratch})
	if err != nil {
		t.Fatal(err)
	}
	env, err := es.New("probe-tenant", "tenant-b", p.Limits)
	if err != nil {
		t.Fatal(err)
	}
	// A secret the runtime can read (like its own config) and a place
	// outside the scratch dir.
	secretDir := traversableDir(t) // readable by anyone: only the sandbox stops the tenant
	secret := filepath.Join(secretDir, "runtime-config.json")
	if err := os.WriteFile(secret, []byte(`{"api_key":"s3cret"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(secretDir, "pwned")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	os.Setenv("RSPP_HOST_ONLY_SECRET", "must-not-leak")
	defer os.Unsetenv("RSPP_HOST_ONLY_SECRET")

	out, err := runSandboxed(t, p, env, "probe", nil,
		"PROBE_SECRET="+secret, "PROBE_OUTSIDE="+outside, "PROBE_TCP="+ln.Addr().String(),
		"PROBE_HOST_PID="+strconv.Itoa(os.Getpid()))
	if err != nil {
		t.Fatalf("probe: %v\n%s", err, out)
	}
	var rep probeReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("probe output %q: %v", out, err)
	}
	blocked := func(what, got, by string) {
		t.Helper()
		if got == "" {
			t.Errorf("%s: NOT blocked", what)
			return
		}
		t.Logf("%-28s blocked by %-38s (%s)", what, by, got)
	}
	blocked("read runtime config", rep.ReadSecret, "landlock (read allowlist)")
	blocked("write outside scratch", rep.WriteOutside, "landlock (write only in scratch)")
	blocked("TCP connect host 127.0.0.1", rep.TCPConnect, "net namespace + landlock TCP")
	blocked("raw socket", rep.RawSocket, "seccomp + no capabilities")
	blocked("signal the supervisor", rep.KillHost, "pid namespace + landlock scope")
	blocked("ptrace the supervisor", rep.Ptrace, "seccomp + pid namespace")
	if _, err := os.Stat(outside); err == nil {
		t.Errorf("file written outside scratch")
	}
	if rep.WriteScratch != "" {
		t.Errorf("write in own scratch dir failed: %s", rep.WriteScratch)
	}
	if !cgroupLineHas(rep.Cgroup, "memory", env.Name()) {
		t.Errorf("tenant not in its envelope:\n%s", rep.Cgroup)
	}
	checks := []struct {
		ok   bool
		what string
	}{
		{rep.PID == 1, "own pid namespace (pid " + strconv.Itoa(rep.PID) + ")"},
		{rep.UID == 0, "root inside its user namespace only"},
		{rep.Hostname == "rspp-sandbox", "own uts namespace (hostname " + rep.Hostname + ")"},
		{rep.CapEff == "0000000000000000", "no capabilities (CapEff " + rep.CapEff + ")"},
		{rep.NoNewPrivs == "1", "no_new_privs"},
		{rep.Seccomp == "2", "seccomp filter mode"},
		{strings.HasPrefix(rep.Cwd, p.ScratchRoot), "cwd is the scratch dir (" + rep.Cwd + ")"},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("tenant sandbox: want %s", c.what)
		}
	}
	for _, kv := range rep.Env {
		if strings.HasPrefix(kv, "RSPP_HOST_ONLY_SECRET=") || strings.HasPrefix(kv, "RSPP_SANDBOX_ENTRY=") {
			t.Errorf("host environment leaked into the tenant: %s", kv)
		}
	}
	for _, fd := range rep.FDs {
		n, _ := strconv.Atoi(strings.SplitN(fd, "-", 2)[0])
		// 0-2 stdio, 3 is ReadDir's own directory; the Go runtime's own
		// netpoller (eventpoll + eventfd) is not inherited.
		if n > 3 && !strings.Contains(fd, "anon_inode:[event") {
			t.Errorf("inherited descriptor in tenant: %s", fd)
		}
	}
	// The scratch dir is removed when the plugin exits.
	if ents, _ := os.ReadDir(p.ScratchRoot); len(ents) != 0 {
		t.Errorf("scratch dirs left: %v", ents)
	}
}

func TestSandboxChecksumVerifiesPluginNotEntry(t *testing.T) {
	entry, plug := testBinaries(t)
	p, _ := isolation.ProfileByName("trusted")
	_, err := runSandboxed(t, p, nil, "probe", &plugin.SecureConfig{Checksum: sha(t, entry), Hash: sha256.New()})
	if !errors.Is(err, isolation.ErrChecksum) {
		t.Fatalf("checksum of the entry point accepted for the plugin: %v", err)
	}
	secure := &plugin.SecureConfig{Checksum: sha(t, plug), Hash: sha256.New()}
	for i := 0; i < 2; i++ { // twice: the Hash must be reset between uses
		if out, err := runSandboxed(t, p, nil, "probe", secure); err != nil {
			t.Fatalf("run %d with the plugin's checksum: %v\n%s", i, err, out)
		}
	}
}

func TestProfileByName(t *testing.T) {
	if _, err := isolation.ProfileByName("nope"); !errors.Is(err, isolation.ErrUnknownProfile) {
		t.Fatalf("unknown profile: %v", err)
	}
	p, err := isolation.ProfileByName("tenant", isolation.Override{Limits: isolation.Limits{MemoryBytes: 128 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	if p.Limits.MemoryBytes != 128<<20 || p.Limits.Pids == 0 || !p.UserNS || !p.SkipHostEnv {
		t.Fatalf("tenant with override: %+v", p)
	}
	tr, _ := isolation.ProfileByName("trusted")
	if tr.Namespaces || tr.Landlock || tr.Seccomp || tr.SkipHostEnv {
		t.Fatalf("trusted profile sandboxes: %+v", tr)
	}
}

var _ = bufio.NewScanner
var _ = syscall.Getpid
var _ = time.Second

// worldDir is a temp dir any uid may enter and write: the cwd of a probe
// run under a profile without a scratch dir (it runs as a uid of its own).
func worldDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "rspp-probe-") // t.TempDir's parent is root's alone
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	if err := os.Chmod(d, 0o777); err != nil {
		t.Fatal(err)
	}
	return d
}
