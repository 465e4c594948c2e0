package pool

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rspp/rspp/supervisor/internal/testplugin"

	"github.com/rspp/rspp/isolation"
)

// A replacement starts at the lowest CPU weight, but only for a while: one
// that has not served after lowWeightLimit (here: it never handshakes) is
// given the normal weight, so a saturated machine cannot starve restarts.
func TestReplacementLowWeightIsBounded(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: cgroup envelopes")
	}
	envs, err := isolation.OpenEnvelopes(isolation.EnvelopesConfig{})
	if err != nil {
		t.Skipf("no cgroup envelopes here: %v", err)
	}
	defer envs.Close()
	prof, _ := isolation.ProfileByName("trusted")
	dir := testplugin.ShortDir(t)
	mute := filepath.Join(dir, "mute")
	if err := os.WriteFile(mute, []byte("#!/bin/sh\nexec sleep 30\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	l := Launch{Binary: mute, SocketDir: dir, StartTimeout: 3 * time.Second, Envelopes: envs, Profile: prof}
	done := make(chan error, 1)
	go func() {
		_, _, _, err := l.start(context.Background(), "weigh", true)
		done <- err
	}()
	var file string
	for deadline := time.Now().Add(2 * time.Second); file == "" && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		file = weightFile(t, "-weigh")
	}
	if file == "" {
		t.Skip("no cpu.shares or cpu.weight for the envelope on this machine")
	}
	low, normal := "2", "1024"
	if filepath.Base(file) == "cpu.weight" {
		low, normal = "1", "100"
	}
	read := func() string {
		b, err := os.ReadFile(file)
		if err != nil {
			return "gone: " + err.Error()
		}
		return strings.TrimSpace(string(b))
	}
	if got := read(); got != low {
		t.Fatalf("%s of a starting replacement = %s, want %s", file, got, low)
	}
	time.Sleep(lowWeightLimit + 500*time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("start ended before the check: %v", err)
	default:
	}
	if got := read(); got != normal {
		t.Errorf("%s of a replacement still starting after %v = %s, want %s", file, lowWeightLimit+500*time.Millisecond, got, normal)
	}
	if err := <-done; err == nil {
		t.Fatal("a plugin that never handshakes started")
	}
}

// weightFile finds the cpu.shares (v1) or cpu.weight (v2) file of the
// envelope whose cgroup name ends in suffix, or "".
func weightFile(t *testing.T, suffix string) string {
	t.Helper()
	var found string
	for _, root := range []string{"/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup"} {
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || found != "" {
				return fs.SkipDir
			}
			if d.IsDir() && strings.HasSuffix(p, suffix) {
				for _, f := range []string{"cpu.shares", "cpu.weight"} {
					if _, err := os.Stat(filepath.Join(p, f)); err == nil {
						found = filepath.Join(p, f)
						return fs.SkipAll
					}
				}
			}
			return nil
		})
		if found != "" {
			return found
		}
	}
	return ""
}
