package livekit

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/livekit/protocol/auth"
	lkp "github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"

	"github.com/rspp/rspp/providers/speechtest"
	"github.com/rspp/rspp/test/testenv"
	"github.com/rspp/rspp/transports/livekit/lkclient"
)

// The test network: a veth pair inside the test's own network namespace
// (pion gathers no loopback candidates).
const (
	serverIP = "198.18.0.1"
	clientIP = "198.18.0.2"
	vethA    = "rsppl0"
	vethB    = "rsppl1"
	apiKey   = "rspptestkey"
	// A test-only secret for a server that lives inside this test's
	// network namespace.
	apiSecret = "rspp-test-secret-0123456789abcdef0123456789"
	innerEnv  = "RSPP_LIVEKIT_NETNS"
)

// LiveKitServerVersion is the pinned server (scripts/livekit-server.sh
// builds and caches it).
const LiveKitServerVersion = "1.13.5"

// serverBinary finds the pinned livekit-server.
func serverBinary() (string, error) {
	if p := os.Getenv("RSPP_LIVEKIT_SERVER"); p != "" {
		return p, nil
	}
	gopath, err := exec.Command("go", "env", "GOPATH").Output()
	if err != nil {
		return "", err
	}
	p := filepath.Join(strings.TrimSpace(string(gopath)), "bin", "livekit-server-v"+LiveKitServerVersion)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("livekit-server %s not found at %s: run `make test-deps` (scripts/livekit-server.sh builds it)", LiveKitServerVersion, p)
	}
	return p, nil
}

// runInNetns re-runs the test binary inside a fresh network namespace
// (unshare --net: it vanishes with its last process, veths included) and
// returns its exit code; ok is false when this already is the inner run.
func runInNetns() (code int, ok bool) {
	if os.Getenv(innerEnv) != "" {
		return 0, false
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1, true
	}
	cmd := exec.Command("unshare", append([]string{"--net", "--", self}, os.Args[1:]...)...)
	cmd.Env = append(os.Environ(), innerEnv+"=1")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), true
		}
		fmt.Fprintln(os.Stderr, "unshare --net:", err)
		return 1, true
	}
	return 0, true
}

// setupNet makes lo and the veth pair of the namespace.
func setupNet() error {
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"link", "add", vethA, "type", "veth", "peer", "name", vethB},
		{"addr", "add", serverIP + "/24", "dev", vethA},
		{"addr", "add", clientIP + "/24", "dev", vethB},
		{"link", "set", vethA, "up"},
		{"link", "set", vethB, "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

func teardownNet() {
	_ = exec.Command("tc", "qdisc", "del", "dev", vethA, "root").Run()
	_ = exec.Command("ip", "link", "del", vethA).Run()
}

// lkServer is one livekit-server process in the namespace.
type lkServer struct {
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

const serverPort = 7880

func httpURL() string { return fmt.Sprintf("http://%s:%d", serverIP, serverPort) }
func wsURL() string   { return fmt.Sprintf("ws://%s:%d", serverIP, serverPort) }

func startServer(bin, dir string) (*lkServer, error) {
	cfg := fmt.Sprintf(`port: %d
bind_addresses: ["%s"]
rtc:
  tcp_port: 7881
  udp_port: 7882
  use_external_ip: false
keys:
  %s: %s
logging:
  level: info
`, serverPort, serverIP, apiKey, apiSecret)
	path := filepath.Join(dir, "livekit.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	s := &lkServer{done: make(chan struct{}), log: filepath.Join(dir, "livekit-server.log")}
	lf, err := os.Create(s.log)
	if err != nil {
		return nil, err
	}
	s.cmd = exec.Command(bin, "--config", path)
	s.cmd.Stdout, s.cmd.Stderr = lf, lf
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		lf.Close()
		return nil, err
	}
	go func() { _ = s.cmd.Wait(); lf.Close(); close(s.done) }()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(httpURL())
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s, nil
			}
		}
		select {
		case <-s.done:
			b, _ := os.ReadFile(s.log)
			return nil, fmt.Errorf("livekit-server exited: %s", tail(string(b), 2000))
		default:
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("livekit-server did not answer within 30 s")
		}
	}
}

func (s *lkServer) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// token mints a participant token for room.
func token(t testing.TB, room, identity string) string {
	t.Helper()
	at := auth.NewAccessToken(apiKey, apiSecret)
	at.SetIdentity(identity).SetValidFor(time.Hour).SetVideoGrant(&auth.VideoGrant{RoomJoin: true, Room: room})
	tok, err := at.ToJWT()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// dispatch creates room with an explicit dispatch of agentName.
func dispatch(ctx context.Context, room, agentName string) error {
	rc := lksdk.NewRoomServiceClient(httpURL(), apiKey, apiSecret)
	if _, err := rc.CreateRoom(ctx, &lkp.CreateRoomRequest{Name: room, EmptyTimeout: 30}); err != nil {
		return fmt.Errorf("create room %s: %w", room, err)
	}
	dc := lksdk.NewAgentDispatchServiceClient(httpURL(), apiKey, apiSecret)
	if _, err := dc.CreateDispatch(ctx, &lkp.CreateAgentDispatchRequest{AgentName: agentName, Room: room}); err != nil {
		return fmt.Errorf("dispatch %s to %s: %w", agentName, room, err)
	}
	return nil
}

// worker is one `rspp serve --livekit-url` process.
type worker struct {
	*testenv.Serve
}

// startWorker starts rspp serve as a LiveKit worker with the example
// pipeline and waits until it registered.
func startWorker(t *testing.T, agentName string, extra ...string) *worker {
	t.Helper()
	speechtest.Require(t)
	dir := t.TempDir()
	state, err := os.MkdirTemp("", "rs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(state) })
	cfg, err := testenv.WriteConfig(dir, bins, testenv.ConfigOptions{StateDir: state, TTSRealtime: true})
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--livekit-url", wsURL(), "--livekit-agent-name", agentName, "--livekit-opus", opusBin, "--log-level", "info"}, extra...)
	s, err := testenv.StartServeEnv(bins.RSPP, cfg, dir, []string{"LIVEKIT_API_KEY=" + apiKey, "LIVEKIT_API_SECRET=" + apiSecret},
		`livekit worker (\S+) registered`, args...)
	if err != nil {
		t.Fatal(err)
	}
	w := &worker{s}
	t.Cleanup(func() {
		_ = w.Stop(20 * time.Second)
		if t.Failed() {
			t.Logf("rspp output:\n%s", tail(w.Output(), 6000))
		}
	})
	return w
}

// join connects a test participant.
func join(t *testing.T, room, identity string, o lkclient.Options) *lkclient.Client {
	t.Helper()
	if o.OpusBinary == "" {
		o.OpusBinary = opusBin
	}
	c, err := lkclient.Join(context.Background(), wsURL(), token(t, room, identity), identity, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// WaitOutput waits until the worker's output holds s.
func (w *worker) WaitOutput(limit time.Duration, s string) (string, error) {
	deadline := time.Now().Add(limit)
	for {
		out := w.Output()
		if strings.Contains(out, s) {
			return out, nil
		}
		if time.Now().After(deadline) {
			return out, fmt.Errorf("worker output has no %q within %s; tail:\n%s", s, limit, tail(out, 3000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
