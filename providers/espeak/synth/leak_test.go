package synth_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine an invocation starts (exec's pipe copiers, pacing) must
// have ended when it returns.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
