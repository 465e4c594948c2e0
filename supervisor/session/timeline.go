package session

import (
	"sync"

	"github.com/rspp/rspp/kernel"
)

// Collector keeps records in memory (summaries, tests). Safe for concurrent
// use.
type Collector struct {
	mu   sync.Mutex
	recs []kernel.TimelineRecord
}

func (c *Collector) Append(rec kernel.TimelineRecord) {
	if rec.Input != nil {
		return // recorded inputs are for the file, not for summaries
	}
	c.mu.Lock()
	c.recs = append(c.recs, rec)
	c.mu.Unlock()
}

// Records returns a copy of what was collected.
func (c *Collector) Records() []kernel.TimelineRecord {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]kernel.TimelineRecord(nil), c.recs...)
}

// Tee hands each record to every non-nil timeline, in order.
type Tee []Timeline

// Append implements Timeline.
func (t Tee) Append(rec kernel.TimelineRecord) {
	for _, tl := range t {
		if tl != nil {
			tl.Append(rec)
		}
	}
}
