package externalnode

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	rsppv1 "github.com/rspp/rspp/proto/rspp/v1"
)

// dialEnv makes the test binary a process that connects to the plugin
// socket it names and calls Describe; its exit code says how far it got.
const dialEnv = "RSPP_TEST_DIAL"

const (
	dialDescribed     = 0
	dialRefused       = 3 // connected, but the plugin served nothing
	dialConnectFailed = 4
)

func dialAndDescribe(path string) int {
	if c, err := net.Dial("unix", path); err != nil {
		fmt.Fprintln(os.Stderr, "connect:", err)
		return dialConnectFailed
	} else {
		c.Close()
	}
	conn, err := grpc.NewClient("unix://"+path, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		return dialRefused
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	ni, err := rsppv1.NewNodeClient(conn).Describe(ctx, &rsppv1.DescribeRequest{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "describe:", err)
		return dialRefused
	}
	fmt.Println("described", ni.Name)
	return dialDescribed
}

// Under the default channel (plaintext on the pinned socket) the plugin
// serves its host's uid only: another uid that reaches the socket (here
// the test opens its permissions) connects but is served nothing, while a
// process of the host's uid is served. The socket dir's own permissions
// are the first barrier; this is the second.
func TestPeerCredChannelServesOnlyTheHostUID(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: connects to the plugin as another uid")
	}
	inst, dir := startEcho(t)
	if inst.Pid() <= 0 {
		t.Fatal("no plugin pid")
	}
	var sock string
	matches, _ := filepath.Glob(filepath.Join(dir, "*", "*"))
	for _, m := range matches {
		if fi, err := os.Lstat(m); err == nil && fi.Mode()&os.ModeSocket != 0 {
			sock = m
		}
	}
	if sock == "" {
		t.Fatalf("no plugin socket under %s (%v)", dir, matches)
	}
	for _, p := range []string{filepath.Dir(dir), dir, filepath.Dir(sock), sock} {
		if err := os.Chmod(p, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	// The dialler is this test binary, copied where another uid can run it.
	binDir, err := os.MkdirTemp("", "rspp-dial")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(binDir) })
	bin := filepath.Join(binDir, "dial")
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(binDir, 0o755); err != nil {
		t.Fatal(err)
	}
	dial := func(uid uint32) (int, string) {
		cmd := exec.Command(bin, "-test.run=^$")
		cmd.Env = []string{dialEnv + "=" + sock}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		switch {
		case err == nil:
			return 0, string(out)
		case errors.As(err, &ee):
			return ee.ExitCode(), string(out)
		}
		t.Fatalf("dialler: %v", err)
		return -1, ""
	}
	if code, out := dial(0); code != dialDescribed {
		t.Fatalf("the host's uid was not served (exit %d): %s", code, out)
	}
	if code, out := dial(65534); code != dialRefused {
		t.Fatalf("uid 65534 dialling the plugin: exit %d, want %d (connected, served nothing): %s", code, dialRefused, out)
	}
	// The plugin itself carries on serving its host.
	if _, err := inst.rpc.Describe(context.Background(), &rsppv1.DescribeRequest{}); err != nil {
		t.Fatalf("plugin stopped serving its host after the refused peer: %v", err)
	}
}

func TestParseChannel(t *testing.T) {
	for in, want := range map[string]Channel{"": ChannelPeerCred, "peercred": ChannelPeerCred, "mtls": ChannelMTLS} {
		if got, err := ParseChannel(in); err != nil || got != want {
			t.Errorf("ParseChannel(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseChannel("tls"); err == nil {
		t.Error("ParseChannel(tls) accepted an unknown channel")
	}
}

// The mtls channel (go-plugin's AutoMTLS) still starts and serves.
func TestMTLSChannelServes(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	inst, err := Start(context.Background(), StartConfig{
		Name: "echo", Binary: self, Env: []string{"RSPP_TEST_PLUGIN=echo"}, SocketDir: t.TempDir(), Channel: ChannelMTLS,
	})
	if err != nil {
		t.Fatalf("start over mtls: %v", err)
	}
	defer inst.Kill()
	if inst.Info().Name != "echo" {
		t.Fatalf("info %+v", inst.Info())
	}
}
