package bench

import (
	"os"
	"testing"
)

// The test binary doubles as the three plugins, exactly as the driver
// binary does (go-plugin's helperProcess pattern).
func TestMain(m *testing.M) {
	ServePluginIfAsked()
	os.Exit(m.Run())
}
