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

// shortTempDir is a temp dir with a short name: the plugins' unix socket
// paths under it (go-plugin adds plugin-dirN/pluginN) must fit sun_path's
// 107 bytes, which t.TempDir's long, randomly sized names sometimes do not.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "rb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
