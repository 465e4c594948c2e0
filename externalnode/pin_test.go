package externalnode

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
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rspp/rspp/kernel"
)

// Hostile handshakes: started with RSPP_PIN_PLUGIN set, the test binary
// prints a go-plugin handshake line go-plugin itself would accept (core 1,
// app 1, grpc), naming an address of the test's choosing, then waits to be
// killed. It runs from init so that it needs nothing from TestMain.
func init() {
	mode := os.Getenv("RSPP_PIN_PLUGIN")
	if mode == "" {
		return
	}
	dir := os.Getenv("PLUGIN_UNIX_SOCKET_DIR")
	network, addr := os.Getenv("RSPP_PIN_NET"), strings.ReplaceAll(os.Getenv("RSPP_PIN_ADDR"), "{dir}", dir)
	target := os.Getenv("RSPP_PIN_TARGET")
	var err error
	switch mode {
	case "slow":
		// A plugin slow to start: it says it runs (its pid), then never
		// prints a handshake.
		_ = os.WriteFile(os.Getenv("RSPP_PIN_DIRFILE"), []byte(strconv.Itoa(os.Getpid())), 0o600)
		time.Sleep(time.Hour)
	case "announce":
	case "symlink":
		addr = filepath.Join(dir, "plugin-link")
		err = os.Symlink(target, addr)
	case "hardlink":
		addr = filepath.Join(dir, "plugin-hard")
		err = os.Link(target, addr)
	case "foreign":
		// Tell the test where our socket dir is, then announce the socket
		// it binds there: right place, right uid, wrong process.
		addr = filepath.Join(dir, "foreign.sock")
		err = os.WriteFile(os.Getenv("RSPP_PIN_DIRFILE"), []byte(dir), 0o600)
		for i := 0; err == nil && i < 1000; i++ {
			if _, serr := os.Lstat(addr); serr == nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pin plugin:", err)
		os.Exit(3)
	}
	fmt.Printf("1|1|%s|%s|grpc|\n", network, addr)
	time.Sleep(time.Hour)
	os.Exit(0)
}

// watchListener counts the connections a listener receives. Call report
// after Start returned: any dial made during the start sits in the backlog
// by then and is accepted within the grace window.
type watchListener struct {
	l     interface{ SetDeadline(time.Time) error }
	ln    net.Listener
	conns atomic.Int32
	first chan net.Conn
	done  chan struct{}
}

func watch(t *testing.T, ln net.Listener) *watchListener {
	t.Helper()
	w := &watchListener{l: ln.(interface{ SetDeadline(time.Time) error }), ln: ln, first: make(chan net.Conn, 1), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if w.conns.Add(1) == 1 {
				w.first <- c
			} else {
				_ = c.Close()
			}
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); <-w.done })
	return w
}

func (w *watchListener) report() int {
	_ = w.l.SetDeadline(time.Now().Add(300 * time.Millisecond))
	<-w.done
	return int(w.conns.Load())
}

func startPinPlugin(t *testing.T, socketParent string, env ...string) error {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	inst, err := Start(context.Background(), StartConfig{
		Name: "hostile#1", Binary: self, Env: env, SocketDir: socketParent, StartTimeout: 10 * time.Second,
	})
	if err == nil {
		inst.Kill()
		return errors.New("start succeeded")
	}
	return err
}

// wantRefused checks the start error is a typed protocol error naming addr.
func wantRefused(t *testing.T, err error, addr string) {
	t.Helper()
	var pe *ProtocolError
	if !errors.As(err, &pe) || !errors.Is(err, kernel.ErrProtocol) {
		t.Fatalf("start error %v (%T), want a *ProtocolError (kernel.ErrProtocol)", err, err)
	}
	if !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("start error %q does not name the refused address %q", err, addr)
	}
}

// noInstanceDirs checks that no per-instance socket dir is left in parent.
func noInstanceDirs(t *testing.T, parent string) {
	t.Helper()
	ents, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "plugin-dir") {
			t.Errorf("socket dir %s left behind", e.Name())
		}
	}
}

func TestHandshakeTCPAddressRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w := watch(t, ln)
	parent := t.TempDir()
	addr := ln.Addr().String()
	err = startPinPlugin(t, parent, "RSPP_PIN_PLUGIN=announce", "RSPP_PIN_NET=tcp", "RSPP_PIN_ADDR="+addr)
	if n := w.report(); n != 0 {
		t.Errorf("the supervisor opened %d connection(s) to the announced TCP address", n)
	}
	wantRefused(t, err, addr)
	noInstanceDirs(t, parent)
}

func TestHandshakeUnixPathOutsideDirRefused(t *testing.T) {
	parent := t.TempDir()
	cases := map[string]struct {
		listen string // where the test listens, relative to parent
		env    []string
	}{
		// A socket anywhere else on the host.
		"elsewhere": {"elsewhere/victim.sock", []string{"RSPP_PIN_PLUGIN=announce", "RSPP_PIN_NET=unix", "RSPP_PIN_ADDR=" + filepath.Join(parent, "elsewhere/victim.sock")}},
		// Up out of its own dir into the shared parent (a sibling's).
		"dotdot": {"sibling.sock", []string{"RSPP_PIN_PLUGIN=announce", "RSPP_PIN_NET=unix", "RSPP_PIN_ADDR={dir}/../sibling.sock"}},
		// A symlink in its own dir pointing out.
		"symlink": {"elsewhere/link-target.sock", []string{"RSPP_PIN_PLUGIN=symlink", "RSPP_PIN_NET=unix", "RSPP_PIN_TARGET=" + filepath.Join(parent, "elsewhere/link-target.sock")}},
		// A hard link in its own dir to a socket bound elsewhere.
		"hardlink": {"elsewhere/hard-target.sock", []string{"RSPP_PIN_PLUGIN=hardlink", "RSPP_PIN_NET=unix", "RSPP_PIN_TARGET=" + filepath.Join(parent, "elsewhere/hard-target.sock")}},
	}
	if err := os.Mkdir(filepath.Join(parent, "elsewhere"), 0o700); err != nil {
		t.Fatal(err)
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(parent, tc.listen)
			ln, err := net.Listen("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			w := watch(t, ln)
			err = startPinPlugin(t, parent, tc.env...)
			if n := w.report(); n != 0 {
				t.Errorf("the supervisor opened %d connection(s) to %s", n, path)
			}
			want := "plugin-dir" // the announced path is inside the instance dir for links
			if name == "elsewhere" {
				want = path
			} else if name == "dotdot" {
				want = "/../sibling.sock"
			}
			wantRefused(t, err, want)
			t.Logf("%s: %v", name, err)
			noInstanceDirs(t, parent)
		})
	}
}

// A socket in the right dir, owned by the right uid, but bound by another
// process: only SO_PEERCRED tells. The supervisor connects, sees the peer
// is not the plugin, and closes without sending a byte.
func TestHandshakeForeignListenerRefusedByPeerCred(t *testing.T) {
	parent := t.TempDir()
	dirFile := filepath.Join(t.TempDir(), "dir")
	errc := make(chan error, 1)
	go func() {
		errc <- startPinPlugin(t, parent, "RSPP_PIN_PLUGIN=foreign", "RSPP_PIN_NET=unix", "RSPP_PIN_DIRFILE="+dirFile)
	}()
	var dir []byte
	for i := 0; i < 1000 && len(dir) == 0; i++ {
		dir, _ = os.ReadFile(dirFile)
		time.Sleep(10 * time.Millisecond)
	}
	if len(dir) == 0 {
		t.Fatalf("plugin never reported its socket dir: %v", <-errc)
	}
	path := filepath.Join(string(dir), "foreign.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	w := watch(t, ln)
	err = <-errc
	wantRefused(t, err, path)
	if !strings.Contains(err.Error(), "not the plugin") {
		t.Errorf("error %q does not say the listener is not the plugin", err)
	}
	if n := w.report(); n > 0 {
		c := <-w.first
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if b, rerr := io.ReadAll(c); len(b) != 0 || rerr != nil {
			t.Errorf("foreign listener received %d bytes (%v): the supervisor spoke to it", len(b), rerr)
		}
		_ = c.Close()
	}
	noInstanceDirs(t, parent)
}

// Each instance gets its own socket dir under the shared parent, holding
// its one socket; Kill (or the plugin's death) removes it.
func TestSocketDirPerInstanceRemoved(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	parent := t.TempDir()
	start := func() *Instance {
		inst, err := Start(context.Background(), StartConfig{Name: "echo", Binary: self, Env: []string{"RSPP_TEST_PLUGIN=echo"}, SocketDir: parent})
		if err != nil {
			t.Fatalf("start: %v", err)
		}
		t.Cleanup(inst.Kill)
		return inst
	}
	a, b := start(), start()
	ents, _ := os.ReadDir(parent)
	if len(ents) != 2 {
		t.Fatalf("%d entries under the socket parent, want one dir per instance", len(ents))
	}
	for _, e := range ents {
		socks, _ := os.ReadDir(filepath.Join(parent, e.Name()))
		if !e.IsDir() || len(socks) != 1 || socks[0].Type() != os.ModeSocket {
			t.Errorf("%s: want a dir holding one socket, got %v", e.Name(), socks)
		}
	}
	a.Kill()
	if ents, _ := os.ReadDir(parent); len(ents) != 1 {
		t.Errorf("after Kill: %d dirs, want 1", len(ents))
	}
	// A crash removes it too, without waiting for Kill.
	if err := syscall.Kill(b.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("killed plugin not noticed")
	}
	for i := 0; i < 200; i++ { // Done and the runner's Wait race by a hair
		if ents, _ := os.ReadDir(parent); len(ents) == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	noInstanceDirs(t, parent)
}

func TestPinInspect(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "plugin-dir1")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "plugin123")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	outside := filepath.Join(root, "out.sock")
	ln2, err := net.Listen("unix", outside)
	if err != nil {
		t.Fatal(err)
	}
	defer ln2.Close()
	_ = os.Symlink(outside, filepath.Join(dir, "link"))
	_ = os.Link(outside, filepath.Join(dir, "hard"))
	_ = os.WriteFile(filepath.Join(dir, "file"), nil, 0o600)
	_ = os.Mkdir(filepath.Join(dir, "sub"), 0o700)
	_ = os.Symlink(root, filepath.Join(dir, "up"))
	p := newHandshakePin("x")
	p.wrap(nil, dir+"/")
	cases := map[string]string{
		sock:                              "",
		outside:                           "outside",
		dir + "/../out.sock":              "not a clean",
		dir + "//plugin123":               "not a clean",
		"plugin-dir1/plugin123":           "not a clean absolute",
		filepath.Join(dir, "link"):        "not a unix socket",
		filepath.Join(dir, "hard"):        "links",
		filepath.Join(dir, "file"):        "not a unix socket",
		filepath.Join(dir, "missing"):     "no such socket",
		filepath.Join(dir, "up/out.sock"): "outside",
		dir:                               "outside",
	}
	for path, want := range cases {
		got := p.inspect(path)
		if want == "" && got != "" || want != "" && !strings.Contains(got, want) {
			t.Errorf("inspect(%q) = %q, want %q", path, got, want)
		}
	}
}

func TestIsSelfOrDescendant(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Skipf("no sleep binary: %v", err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	me, child := os.Getpid(), cmd.Process.Pid
	if !isSelfOrDescendant(me, me) || !isSelfOrDescendant(child, me) || !isSelfOrDescendant(me, os.Getppid()) {
		t.Error("self, child or parent chain not recognised")
	}
	if isSelfOrDescendant(me, child) || isSelfOrDescendant(1, me) {
		t.Error("ancestor or init taken for a descendant")
	}
}

// Cancelling Start's context while the plugin has not yet shaken hands
// kills it and returns at once, not after StartTimeout.
func TestStartInterruptedWhilePluginIsSlow(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	parent := t.TempDir()
	pidFile := filepath.Join(t.TempDir(), "pid")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		inst, err := Start(ctx, StartConfig{Name: "slow#1", Binary: self, SocketDir: parent, StartTimeout: time.Hour,
			Env: []string{"RSPP_PIN_PLUGIN=slow", "RSPP_PIN_DIRFILE=" + pidFile}})
		if err == nil {
			inst.Kill()
		}
		errc <- err
	}()
	var pid int
	for i := 0; i < 1000 && pid == 0; i++ {
		b, _ := os.ReadFile(pidFile)
		pid, _ = strconv.Atoi(string(b))
		time.Sleep(10 * time.Millisecond)
	}
	if pid == 0 {
		t.Fatal("slow plugin never ran")
	}
	cancel()
	select {
	case err = <-errc:
	case <-time.After(30 * time.Second): // a hang guard; the start timeout is an hour
		t.Fatal("Start did not return after its context was cancelled")
	}
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("Start: %v, want an interrupted start (context.Canceled)", err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("slow plugin pid %d still exists after the interrupted start (%v)", pid, err)
	}
	noInstanceDirs(t, parent)
}
