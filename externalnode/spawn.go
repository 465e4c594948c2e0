package externalnode

import (
	"runtime"
	"sync"
)

// Pdeathsig is delivered when the *thread* that forked the child exits, not
// the process. Go may retire threads at will, so every plugin is forked from
// one goroutine that locks its OS thread and never unlocks it: the signal
// then fires only when the runtime process itself dies.
var (
	spawnOnce sync.Once
	spawnReqs chan spawnReq
)

type spawnReq struct {
	fn   func() error
	done chan error
}

// OnSpawnThread runs fn on the runtime's dedicated fork thread. Runners that
// start plugin processes (including sandboxed ones) must fork through it so
// that SysProcAttr.Pdeathsig works.
func OnSpawnThread(fn func() error) error {
	spawnOnce.Do(func() {
		spawnReqs = make(chan spawnReq)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread lives as long as the process
			for r := range spawnReqs {
				r.done <- r.fn()
			}
		}()
	})
	done := make(chan error, 1)
	spawnReqs <- spawnReq{fn: fn, done: done}
	return <-done
}
