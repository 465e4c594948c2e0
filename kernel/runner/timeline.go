package runner

import (
	"encoding/json"
	"fmt"
	"os"
	"sync"

	"github.com/rspp/rspp/kernel"
)

// JSONLTimeline appends one JSON object per record to a file, unbuffered:
// each line is written as its record happens, so a crash leaves the evidence
// up to that point. Safe for concurrent use by many sessions.
type JSONLTimeline struct {
	mu   sync.Mutex
	f    *os.File
	err  error
	tees []Timeline
}

// CreateJSONL creates (truncates) path.
func CreateJSONL(path string, tees ...Timeline) (*JSONLTimeline, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("timeline: %w", err)
	}
	return &JSONLTimeline{f: f, tees: tees}, nil
}

// Append writes rec as one line. A write error is kept (Err) and later
// records are still attempted: evidence is best effort, never a reason to
// stop a session.
func (t *JSONLTimeline) Append(rec kernel.TimelineRecord) {
	line, err := json.Marshal(rec)
	if err != nil {
		return
	}
	line = append(line, '\n')
	t.mu.Lock()
	if t.f != nil {
		if _, err := t.f.Write(line); err != nil && t.err == nil {
			t.err = err
		}
	}
	t.mu.Unlock()
	for _, tee := range t.tees {
		tee.Append(rec)
	}
}

// Err is the first write error, if any.
func (t *JSONLTimeline) Err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

// Close syncs and closes the file.
func (t *JSONLTimeline) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.f == nil {
		return nil
	}
	_ = t.f.Sync()
	err := t.f.Close()
	t.f = nil
	return err
}

// Collector keeps records in memory (summaries, tests). Safe for concurrent
// use.
type Collector struct {
	mu   sync.Mutex
	recs []kernel.TimelineRecord
}

func (c *Collector) Append(rec kernel.TimelineRecord) {
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
