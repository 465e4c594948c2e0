// Package testrt starts a supervisor Runtime for the tests of supervisor's
// rooms (load, admin) and the root package's external tests. Test code
// only.
package testrt

import (
	"context"
	"testing"

	"github.com/rspp/rspp/supervisor"
	"github.com/rspp/rspp/supervisor/config"
	"github.com/rspp/rspp/supervisor/pool"
)

// Start loads cfgPath and starts a runtime that is closed (and checked
// for leftover processes) when the test ends.
func Start(t testing.TB, cfgPath string, events func(pool.Event)) *supervisor.Runtime {
	t.Helper()
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := supervisor.Start(context.Background(), cfg, supervisor.Options{Events: events})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		rt.Close()
		if left := rt.StartedPids().Alive(); len(left) > 0 {
			t.Errorf("plugin processes left behind: %v", left)
		}
	})
	return rt
}
