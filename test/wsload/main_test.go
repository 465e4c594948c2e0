package wsload

import (
	"fmt"
	"os"
	"testing"

	"github.com/rspp/rspp/test/testenv"
	"go.uber.org/goleak"
)

// Every client goroutine ends before RunClient returns, the fake server's
// before its test's cleanup returns; the binaries a real-server test built
// are removed, and none of them may still be running.
func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		if left := testenv.ProcsUnder(buildDir); len(left) > 0 {
			fmt.Fprintf(os.Stderr, "processes left behind: %v\n", left)
			code = 1
		}
		os.RemoveAll(buildDir)
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines left behind:", err)
			code = 1
		}
	}
	os.Exit(code)
}
