package externalnode

import (
	"sync"

	"google.golang.org/protobuf/proto"

	rsppv1 "github.com/rspp/rspp/proto/rspp/v1"
)

// Dedupe of idempotent invocations (Info.Idempotent): the plugin records
// the outputs of an invocation that carries an idempotency key; once it
// ended OK, a later OPEN with the same key (a retry of the node in the
// same turn that reached this instance) is answered with those outputs
// and a successful END, without running Invoke again. Failed, cancelled
// or oversized runs are not recorded: they run again.

const (
	maxDedupeKeys   = 256     // results remembered, oldest forgotten first
	maxDedupeEvents = 4096    // outputs of one invocation worth recording
	maxDedupeBytes  = 8 << 20 // and their wire size
)

type dedupeCache struct {
	mu    sync.Mutex
	res   map[string][]*rsppv1.Event
	order []string
	hits  int64
}

func (d *dedupeCache) lookup(key string) ([]*rsppv1.Event, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	evs, ok := d.res[key]
	if ok {
		d.hits++
	}
	return evs, ok
}

func (d *dedupeCache) store(key string, evs []*rsppv1.Event) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.res == nil {
		d.res = map[string][]*rsppv1.Event{}
	}
	if _, ok := d.res[key]; ok {
		return
	}
	d.res[key] = evs
	d.order = append(d.order, key)
	if len(d.order) > maxDedupeKeys {
		delete(d.res, d.order[0])
		d.order = d.order[1:]
	}
}

// Hits counts invocations answered from the cache.
func (d *dedupeCache) Hits() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.hits
}

// recorder keeps one invocation's outputs for the cache.
type recorder struct {
	mu       sync.Mutex
	evs      []*rsppv1.Event
	bytes    int
	overflow bool
}

func (r *recorder) add(ev *rsppv1.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.overflow {
		return
	}
	r.bytes += proto.Size(ev)
	if len(r.evs) >= maxDedupeEvents || r.bytes > maxDedupeBytes {
		r.overflow, r.evs = true, nil
		return
	}
	r.evs = append(r.evs, proto.Clone(ev).(*rsppv1.Event))
}

func (r *recorder) result() ([]*rsppv1.Event, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.evs, !r.overflow
}

// replay answers OPEN f from a recorded result: the outputs, re-addressed
// to the new invocation and stamped with its epoch, then a successful END.
func replay(f *rsppv1.DataFrame, evs []*rsppv1.Event, send func(*rsppv1.DataFrame) error) {
	for _, ev := range evs {
		c := proto.Clone(ev).(*rsppv1.Event)
		c.InvocationId = f.InvocationId
		c.SessionId = f.SessionId
		c.TurnId = f.TurnId
		if f.AuthorityEpoch != 0 {
			c.AuthorityEpoch = f.AuthorityEpoch
		}
		if send(&rsppv1.DataFrame{Kind: rsppv1.DataFrame_KIND_EVENT, InvocationId: f.InvocationId, Event: c}) != nil {
			return
		}
	}
	_ = send(&rsppv1.DataFrame{Kind: rsppv1.DataFrame_KIND_END, InvocationId: f.InvocationId})
}
