// Package lkenv is test support for the LiveKit path: the pinned
// livekit-server, the network namespace it needs (pion gathers no
// loopback candidates: a veth pair with test addresses inside a fresh
// namespace) and the server APIs a test calls (tokens, rooms, explicit
// dispatch). Used by test/livekit and the LiveKit entries of make bench.
package lkenv

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/livekit/protocol/auth"
	lkp "github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
)

// The test network and server.
const (
	ServerIP = "198.18.0.1"
	ClientIP = "198.18.0.2"
	vethA    = "rsppl0"
	vethB    = "rsppl1"
	Port     = 7880
	APIKey   = "rspptestkey"
	// APISecret is a test-only secret of a server that lives inside the
	// test's own network namespace.
	APISecret = "rspp-test-secret-0123456789abcdef0123456789"
	// ServerVersion is the pinned server (scripts/livekit-server.sh
	// builds and caches it).
	ServerVersion = "1.13.5"
	innerEnv      = "RSPP_LIVEKIT_NETNS"
)

// HTTPURL and WSURL are the server's addresses.
func HTTPURL() string { return fmt.Sprintf("http://%s:%d", ServerIP, Port) }
func WSURL() string   { return fmt.Sprintf("ws://%s:%d", ServerIP, Port) }

// ServerBinary finds the pinned livekit-server: $RSPP_LIVEKIT_SERVER, or
// $(go env GOPATH)/bin/livekit-server-v<ServerVersion>.
func ServerBinary() (string, error) {
	if p := os.Getenv("RSPP_LIVEKIT_SERVER"); p != "" {
		return p, nil
	}
	gopath, err := exec.Command("go", "env", "GOPATH").Output()
	if err != nil {
		return "", err
	}
	p := filepath.Join(strings.TrimSpace(string(gopath)), "bin", "livekit-server-v"+ServerVersion)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("livekit-server %s not found at %s: run `make test-deps` (scripts/livekit-server.sh builds it)", ServerVersion, p)
	}
	return p, nil
}

// InNetns says whether this process is the re-run inside the namespace.
func InNetns() bool { return os.Getenv(innerEnv) != "" }

// RunInNetns re-runs this binary with args inside a fresh network
// namespace (unshare --net: it vanishes with its last process, veths
// included) and returns its exit code.
func RunInNetns(args []string, env ...string) int {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cmd := exec.Command("unshare", append([]string{"--net", "--", self}, args...)...)
	cmd.Env = append(append(os.Environ(), innerEnv+"=1"), env...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		fmt.Fprintln(os.Stderr, "unshare --net:", err)
		return 1
	}
	return 0
}

// SetupNet brings up lo and the veth pair of the namespace.
func SetupNet() error {
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"link", "add", vethA, "type", "veth", "peer", "name", vethB},
		{"addr", "add", ServerIP + "/24", "dev", vethA},
		{"addr", "add", ClientIP + "/24", "dev", vethB},
		{"link", "set", vethA, "up"},
		{"link", "set", vethB, "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

// TeardownNet removes the veth pair (the namespace goes with the process).
func TeardownNet() {
	_ = exec.Command("tc", "qdisc", "del", "dev", "lo", "root").Run()
	_ = exec.Command("ip", "link", "del", vethA).Run()
}

// Server is one livekit-server process.
type Server struct {
	cmd  *exec.Cmd
	done chan struct{}
	Log  string
}

// StartServer starts bin on ServerIP with the test key, its config and
// log in dir, and returns once it answers HTTP (within 30 s).
func StartServer(bin, dir string) (*Server, error) {
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
`, Port, ServerIP, APIKey, APISecret)
	path := filepath.Join(dir, "livekit.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	s := &Server{done: make(chan struct{}), Log: filepath.Join(dir, "livekit-server.log")}
	lf, err := os.Create(s.Log)
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
		resp, err := http.Get(HTTPURL())
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s, nil
			}
		}
		select {
		case <-s.done:
			b, _ := os.ReadFile(s.Log)
			return nil, fmt.Errorf("livekit-server exited: %s", Tail(string(b), 2000))
		default:
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("livekit-server did not answer within 30 s")
		}
	}
}

// Stop ends the server (SIGTERM, then SIGKILL after 10 s). Safe twice.
func (s *Server) Stop() {
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

// Token mints a participant token for room.
func Token(room, identity string) (string, error) {
	at := auth.NewAccessToken(APIKey, APISecret)
	at.SetIdentity(identity).SetValidFor(time.Hour).SetVideoGrant(&auth.VideoGrant{RoomJoin: true, Room: room})
	return at.ToJWT()
}

// Dispatch creates room with an explicit dispatch of agentName and
// waits until livekit-server has given the dispatch a job (see
// dispatchJobWait).
func Dispatch(ctx context.Context, room, agentName string) error {
	rc := lksdk.NewRoomServiceClient(HTTPURL(), APIKey, APISecret)
	if _, err := rc.CreateRoom(ctx, &lkp.CreateRoomRequest{Name: room, EmptyTimeout: 30}); err != nil {
		return fmt.Errorf("create room %s: %w", room, err)
	}
	dc := lksdk.NewAgentDispatchServiceClient(HTTPURL(), APIKey, APISecret)
	for attempt := 1; ; attempt++ {
		d, err := dc.CreateDispatch(ctx, &lkp.CreateAgentDispatchRequest{AgentName: agentName, Room: room})
		if err != nil {
			return fmt.Errorf("dispatch %s to %s: %w", agentName, room, err)
		}
		ok, err := awaitJob(ctx, dc, room, d.Id, dispatchJobWait)
		if err != nil || ok {
			return err
		}
		if attempt == dispatchAttempts {
			return fmt.Errorf("dispatch %s to %s: livekit-server gave it no job in %d attempts of %s", agentName, room, attempt, dispatchJobWait)
		}
		if _, err := dc.DeleteDispatch(ctx, &lkp.DeleteAgentDispatchRequest{DispatchId: d.Id, Room: room}); err != nil {
			return fmt.Errorf("delete jobless dispatch %s in %s: %w", d.Id, room, err)
		}
	}
}

// livekit-server keeps a cache of the agent names its workers registered,
// refreshed by a registration message it handles asynchronously. A
// dispatch made just after a worker registered can meet the stale cache;
// the server then logs "not dispatching agent job since no worker is
// available" and never retries that dispatch. So Dispatch waits for the
// dispatch's job and, when none comes, makes the dispatch again.
const (
	dispatchJobWait  = 10 * time.Second
	dispatchAttempts = 3
)

// awaitJob reports whether dispatch id in room got a job within limit.
func awaitJob(ctx context.Context, dc *lksdk.AgentDispatchClient, room, id string, limit time.Duration) (bool, error) {
	deadline := time.Now().Add(limit)
	for {
		ds, err := dc.ListDispatch(ctx, &lkp.ListAgentDispatchRequest{Room: room, DispatchId: id})
		if err != nil {
			return false, fmt.Errorf("list dispatch %s in %s: %w", id, room, err)
		}
		for _, d := range ds.GetAgentDispatches() {
			if d.Id == id && len(d.GetState().GetJobs()) > 0 {
				return true, nil
			}
		}
		if time.Now().After(deadline) {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// BuildOpus builds the rspp-opus helper (cgo) to out.
func BuildOpus(moduleRoot, out string) error {
	build := exec.Command("go", "build", "-o", out, "./cmd/rspp-opus")
	build.Dir = moduleRoot
	build.Env = append(os.Environ(), "CGO_ENABLED=1")
	if b, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/rspp-opus (needs cgo and libopus-dev libopusfile-dev libsoxr-dev pkg-config): %v\n%s", err, b)
	}
	return nil
}

// Tail is the last n bytes of s.
func Tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
