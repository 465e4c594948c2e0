package isolation_test

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rspp/rspp/isolation"
)

// TestMain re-runs the test binary as a child in two roles: as the sandbox
// entry point (MaybeSandboxMain returns only when this is not the entry) and
// as a misbehaving helper (RSPP_ISOLATION_HELPER=<mode>).
func TestMain(m *testing.M) {
	isolation.MaybeSandboxMain()
	if mode := os.Getenv("RSPP_ISOLATION_HELPER"); mode != "" {
		os.Exit(runHelper(mode))
	}
	code := m.Run()
	removeTestBinaries()
	os.Exit(code)
}

func runHelper(mode string) int {
	// A gated helper blocks on fd 3 until the test has placed it.
	if os.Getenv("RSPP_HELPER_GATED") == "1" {
		gate := os.NewFile(3, "gate")
		_, _ = io.Copy(io.Discard, gate)
		_ = gate.Close()
	}
	switch mode {
	case "memhog":
		var keep [][]byte
		for {
			b := make([]byte, 1<<20)
			for i := 0; i < len(b); i += 4096 {
				b[i] = 1
			}
			keep = append(keep, b)
		}
	case "forkbomb":
		n := 0
		for {
			pid, err := syscall.ForkExec("/bin/sleep", []string{"sleep", "30"}, &syscall.ProcAttr{})
			if err != nil {
				fmt.Printf("forks=%d err=%v\n", n, err)
				return 3
			}
			_ = pid
			n++
			if n > 10000 {
				fmt.Println("forks unbounded")
				return 4
			}
		}
	case "spin":
		d, _ := time.ParseDuration(os.Getenv("RSPP_SPIN_FOR"))
		end := time.Now().Add(d)
		done := make(chan struct{})
		for i := 0; i < runtime.NumCPU(); i++ {
			go func() {
				for time.Now().Before(end) {
				}
				done <- struct{}{}
			}()
		}
		for i := 0; i < runtime.NumCPU(); i++ {
			<-done
		}
		return 0
	case "sleep":
		time.Sleep(time.Minute)
		return 0
	}
	return sandboxHelper(mode)
}

// startGated starts the test binary in helper mode, blocked on a pipe, puts
// it into env, then releases it: the helper runs no line of its behaviour
// outside the envelope.
func startGated(t *testing.T, env *isolation.Envelope, mode string, extraEnv ...string) (*exec.Cmd, *strings.Builder) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "RSPP_ISOLATION_HELPER="+mode, "RSPP_HELPER_GATED=1")
	cmd.Env = append(cmd.Env, extraEnv...)
	cmd.ExtraFiles = []*os.File{r}
	out := &strings.Builder{}
	cmd.Stdout = out
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	_ = r.Close()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	if err := env.Add(cmd.Process.Pid); err != nil {
		_ = w.Close()
		t.Fatal(err)
	}
	_ = w.Close()
	return cmd, out
}
