package admin

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rspp/rspp/supervisor"
	"github.com/rspp/rspp/supervisor/internal/testplugin"
	"github.com/rspp/rspp/supervisor/internal/testrt"
)

// A live runtime's admin socket is never taken over or swept; a dead
// one's (socket file and unlocked lock file left, as after a SIGKILL) is
// swept by the next start.
func TestAdminSocketLiveKeptStaleSwept(t *testing.T) {
	rt := testrt.Start(t, testplugin.Config(t, t.TempDir(), nil, ""), nil)
	sock := filepath.Join(rt.StateDir().Root, "admin.sock")
	live, err := Serve(rt, sock)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	if _, err := Serve(rt, sock); !errors.Is(err, supervisor.ErrAdminBusy) {
		t.Fatalf("second Serve on a live socket: %v, want supervisor.ErrAdminBusy", err)
	}
	if supervisor.SweepAdminSocket(sock) {
		t.Fatal("a live admin socket was swept")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := Call(ctx, sock, Request{Op: "status"}); err != nil {
		t.Fatalf("live admin socket stopped answering: %v", err)
	}
	live.Close()
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Fatalf("closed admin server left its socket: %v", err)
	}

	// What a SIGKILLed runtime leaves: the socket file and the lock file.
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	_ = ln.Close()
	if err := os.WriteFile(sock+".lock", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if !supervisor.SweepAdminSocket(sock) {
		t.Fatal("stale admin socket not swept")
	}
	for _, p := range []string{sock, sock + ".lock"} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s left after the sweep: %v", p, err)
		}
	}
}
