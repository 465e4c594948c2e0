package sdk

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rspp/rspp/externalnode/conformance"
	"github.com/rspp/rspp/test/testenv"
)

// TestCheckIsNoStricterThanTheRuntime: outputs with no ids, no lane and
// no schema version are what rspp run accepts (the gateway normalises
// them), so check, which applies the gateway's own rules, passes them.
func TestCheckIsNoStricterThanTheRuntime(t *testing.T) {
	needPython(t)
	root := testenv.MustModuleRoot(t)
	tool := rsppNodeBin(t)
	dir := outsideDir(t)
	script := filepath.Join(dir, "minimal.py")
	body := fmt.Sprintf("#!/usr/bin/python3\nimport os, sys\nos.environ['BROKEN_RULE'] = 'minimal'\nos.environ['RSPP_PYTHON_SDK'] = %q\nsys.path.insert(0, %q)\nimport broken\nbroken.main()\n",
		filepath.Join(root, "sdk", "python"), filepath.Join(root, "test", "sdk", "fixtures"))
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	r := run(t, dir, nil, 2*time.Minute, tool, "check", script)
	if want := fmt.Sprintf("OK: all %d checks passed", len(conformance.Checks)); r.code != 0 || !strings.Contains(r.stdout, want) {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
