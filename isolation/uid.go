package isolation

import (
	"fmt"
	"os"
	"sync"
)

// UIDRange is where per-instance host uids come from: when the runtime
// runs as root, each plugin instance (trusted or tenant) runs as a uid of
// its own, with a group of the same number, unless its profile says
// RunAsRoot. A uid of its own means one instance cannot signal, ptrace or
// read the files of another, and owns nothing on the host.
type UIDRange struct {
	First uint32
	Count uint32
}

// DefaultUIDRange is 65536 uids from 1,879,048,192 (0x70000000): above the
// ranges /etc/subuid, systemd's dynamic users and systemd-nspawn hand out
// by default. Each runtime process starts at an offset derived from its
// pid, and never hands out a uid one of its live instances holds; two
// runtimes on one machine are unlikely, not impossible, to share one.
var DefaultUIDRange = UIDRange{First: 0x70000000, Count: 1 << 16}

type uidAllocator struct {
	mu   sync.Mutex
	used map[uint32]bool
	next uint32
}

var uids = &uidAllocator{used: map[uint32]bool{}, next: uint32(os.Getpid()) * 257}

// acquire returns a uid of r no live instance of this process holds, and
// its release.
func (a *uidAllocator) acquire(r UIDRange) (int, func(), error) {
	if r.Count == 0 {
		r = DefaultUIDRange
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := uint32(0); i < r.Count; i++ {
		uid := r.First + (a.next+i)%r.Count
		if a.used[uid] {
			continue
		}
		a.used[uid] = true
		a.next += i + 1
		var once sync.Once
		return int(uid), func() {
			once.Do(func() {
				a.mu.Lock()
				delete(a.used, uid)
				a.mu.Unlock()
			})
		}, nil
	}
	return 0, nil, fmt.Errorf("%w: all %d uids of %d.. are in use", ErrSandboxSetup, r.Count, r.First)
}
