package isolation_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rspp/rspp/isolation"
)

// TestEnvelopeV2 runs the cgroup v2 code paths on a temporary cgroup2 mount.
// On a hybrid machine (v1 controllers) the v2 hierarchy has no memory, cpu
// or pids controller: limits must then fail with ErrUnsupported naming the
// controller, and placement, stats, kill, removal and sweep are still
// exercised. On a unified machine the limits are tested to bite too.
func TestEnvelopeV2(t *testing.T) {
	needRoot(t)
	mnt := t.TempDir()
	if err := unix.Mount("rspp-test", mnt, "cgroup2", 0, ""); err != nil {
		t.Skipf("cannot mount cgroup2 at %s: %v (kernel without cgroup2 or a container that forbids mounts)", mnt, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(mnt, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	parent := "rspp-v2test-" + itoa(os.Getpid())
	if err := os.Mkdir(filepath.Join(mnt, parent), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.Remove(filepath.Join(mnt, parent)); err != nil {
			t.Errorf("remove v2 test parent: %v", err)
		}
	})
	stale := filepath.Join(mnt, parent, "rspp-"+itoa(os.Getpid())+"-1-7-crashed")
	if err := os.Mkdir(stale, 0o755); err != nil {
		t.Fatal(err)
	}
	es := openEnvelopes(t, isolation.EnvelopesConfig{V2Mount: mnt, V2Parent: parent})
	if es.Version() != 2 {
		t.Fatalf("Version() = %d, want 2", es.Version())
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("stale v2 envelope survived the sweep on open")
	}
	ctrl, _ := os.ReadFile(filepath.Join(mnt, parent, "cgroup.controllers"))
	avail := " " + strings.TrimSpace(string(ctrl)) + " "
	t.Logf("v2 controllers available here: %q", strings.TrimSpace(string(ctrl)))

	t.Run("memory", func(t *testing.T) {
		env, err := es.New("v2-memhog", "t", isolation.Limits{MemoryBytes: 96 << 20})
		if !strings.Contains(avail, " memory ") {
			if !errors.Is(err, isolation.ErrUnsupported) {
				t.Fatalf("New with memory limit and no v2 memory controller: %v, want ErrUnsupported", err)
			}
			t.Skipf("memory limit not testable on v2 here: %v", err)
		}
		if err != nil {
			t.Fatal(err)
		}
		cmd, _ := startGated(t, env, "memhog")
		_ = cmd.Wait()
		if !errors.Is(env.Failure(), isolation.ErrOOM) {
			t.Fatalf("Failure() = %v, want ErrOOM", env.Failure())
		}
	})
	t.Run("pids", func(t *testing.T) {
		env, err := es.New("v2-forkbomb", "t", isolation.Limits{Pids: 40})
		if !strings.Contains(avail, " pids ") {
			if !errors.Is(err, isolation.ErrUnsupported) {
				t.Fatalf("New with pids limit and no v2 pids controller: %v, want ErrUnsupported", err)
			}
			t.Skipf("pids limit not testable on v2 here: %v", err)
		}
		if err != nil {
			t.Fatal(err)
		}
		cmd, _ := startGated(t, env, "forkbomb")
		_ = cmd.Wait()
		if !errors.Is(env.Failure(), isolation.ErrPidsLimit) {
			t.Fatalf("Failure() = %v, want ErrPidsLimit", env.Failure())
		}
	})
	t.Run("place-stats-kill-remove", func(t *testing.T) {
		env, err := es.New("v2-sleeper", "t", isolation.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		cmd, _ := startGated(t, env, "spin", "RSPP_SPIN_FOR=30s")
		time.Sleep(100 * time.Millisecond)
		pids, err := env.Pids()
		if err != nil || len(pids) != 1 || pids[0] != cmd.Process.Pid {
			t.Fatalf("Pids() = %v, %v; want [%d]", pids, err, cmd.Process.Pid)
		}
		st, err := env.Stats()
		if err != nil || st.CPUUsageNanos == 0 {
			t.Fatalf("Stats() = %+v, %v; want CPU usage from cpu.stat", st, err)
		}
		if err := env.Kill(); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); err == nil {
			t.Fatal("process survived cgroup.kill")
		}
		dir := filepath.Join(mnt, parent, env.Name())
		if err := env.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Fatalf("%s left after Close", dir)
		}
	})
}
