package websocket

import (
	"testing"

	"go.uber.org/goleak"
)

// Every connection's reader, writer and pinger end with it.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
