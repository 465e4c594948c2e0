package isolation

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestExecNeedsMatchesLoader checks the ELF walk against what the dynamic
// loader itself maps (ld.so --list prints the resolved closure without
// running the program).
func TestExecNeedsMatchesLoader(t *testing.T) {
	bin := "/bin/sh"
	if _, err := os.Stat(bin); err != nil {
		t.Skip("no /bin/sh")
	}
	needs, err := ExecNeeds(bin, "")
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, p := range needs {
		r, _ := filepath.EvalSymlinks(p)
		have[r] = true
	}
	out, err := exec.Command("ldd", bin).Output()
	if err != nil {
		t.Skipf("ldd unavailable to cross-check: %v", err)
	}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		var p string
		switch {
		case len(f) >= 3 && f[1] == "=>":
			p = f[2]
		case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
			p = f[0]
		default:
			continue
		}
		r, _ := filepath.EvalSymlinks(p)
		if !have[r] {
			t.Errorf("loader maps %s (%s), ExecNeeds missed it: %v", p, r, needs)
		}
	}
}

func TestExecNeedsScript(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "node.sh")
	if err := os.WriteFile(script, []byte("#!/usr/bin/env -S sh -e\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	needs, err := ExecNeeds(script, "/usr/bin:/bin")
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(needs, " ")
	for _, want := range []string{script, "/usr/bin/env", "/usr/bin/sh", ldCache} {
		if !strings.Contains(joined, want) {
			t.Errorf("needs of %s lack %s: %v", script, want, needs)
		}
	}
	if err := os.WriteFile(script, []byte("#!relative/interp\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := ExecNeeds(script, ""); err == nil || !strings.Contains(err.Error(), "not an absolute path") {
		t.Errorf("relative interpreter: %v", err)
	}
	if err := os.WriteFile(script, []byte("plain text"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := ExecNeeds(script, ""); err == nil {
		t.Errorf("neither ELF nor script accepted")
	}
}

func TestParseLoaderCacheRejectsGarbage(t *testing.T) {
	if m := parseLoaderCache([]byte("garbage that is long enough to be a header.............")); m != nil {
		t.Fatalf("garbage parsed: %v", m)
	}
	if m := parseLoaderCache(nil); m != nil {
		t.Fatal("empty parsed")
	}
}
