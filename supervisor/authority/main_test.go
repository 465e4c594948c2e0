package authority_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every lease's keep-alive and watch goroutines end with Release, the
// client's with Close.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
