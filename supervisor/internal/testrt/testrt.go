// Package testrt starts a supervisor Runtime for the tests of supervisor's
// rooms (load, admin) and the root package's external tests. Test code
// only.
package testrt

import (
	"context"
	"os"
	"testing"

	"github.com/rspp/rspp/supervisor"
	"github.com/rspp/rspp/supervisor/config"
	"github.com/rspp/rspp/supervisor/pool"
)

// Start loads cfgPath and starts a runtime told of pool events that is
// closed (and checked for leftovers) when the test ends.
func Start(t testing.TB, cfgPath string, events func(pool.Event)) *supervisor.Runtime {
	t.Helper()
	return StartWith(t, cfgPath, supervisor.Options{Events: events})
}

// StartWith is Start with the runtime's options. When the test ends the
// runtime is closed and must have left no plugin process and no run dir.
func StartWith(t testing.TB, cfgPath string, opts supervisor.Options) *supervisor.Runtime {
	t.Helper()
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := supervisor.Start(context.Background(), cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		rt.Close()
		if left := rt.StartedPids().Alive(); len(left) > 0 {
			t.Errorf("plugin processes left behind: %v", left)
		}
		if _, err := os.Stat(rt.StateDir().Run); !os.IsNotExist(err) {
			t.Errorf("run dir %s left behind: %v", rt.StateDir().Run, err)
		}
	})
	return rt
}
