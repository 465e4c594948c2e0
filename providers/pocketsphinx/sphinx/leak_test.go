package sphinx_test

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain gives the package's tests a temp dir of their own, so the
// checks that no temp WAV is left behind see only this package's files
// (other packages decode beside it under go test ./...), and removes it
// after. Every goroutine an invocation starts (exec's pipe copiers,
// pacing) must have ended when it returns.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rspp-sphinx-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("TMPDIR", dir)
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.RemoveAll(dir)
	os.Exit(code)
}
