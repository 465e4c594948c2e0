package wsload

import (
	"testing"

	"go.uber.org/goleak"
)

// Every client goroutine ends before RunClient returns; the fake server's
// before its test's cleanup returns.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
