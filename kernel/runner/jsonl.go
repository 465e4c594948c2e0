package runner

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rspp/rspp/kernel"
)

// Writer defaults.
const (
	DefaultTimelineBuffer = 4 << 20 // bytes of encoded records waiting for the writer
	DefaultTimelineFlush  = 50 * time.Millisecond
	timelineBatch         = 256 << 10 // a batch this big wakes the writer at once
)

// WriterOptions tune a JSONLTimeline.
type WriterOptions struct {
	// BufferBytes bounds the encoded records waiting to be written. Past
	// it, input records (level full) are dropped and counted, never a
	// control record (lifecycle, decisions, markers: those always queue).
	// The deterministic downgrade (record.Policy.Budget) is what keeps a
	// session's full evidence within bounds; this is the safety net of a
	// disk slower than the traffic. 0: DefaultTimelineBuffer.
	BufferBytes int
	// FlushEvery is how often waiting records are written at the latest
	// (0: DefaultTimelineFlush). A crash loses at most this much.
	FlushEvery time.Duration
}

// JSONLTimeline appends one JSON object per record to a file. Append
// encodes the record on the caller's goroutine and queues the bytes: it
// never does I/O and never waits on the disk. One writer goroutine writes
// the queue in batches. Safe for concurrent use by many sessions.
type JSONLTimeline struct {
	opts WriterOptions
	tees []Timeline

	mu      sync.Mutex
	buf     []byte // encoded, not yet written
	spare   []byte
	queued  uint64 // records queued so far
	written uint64 // records written so far
	flushed *sync.Cond
	closed  bool
	err     error

	dropped  atomic.Int64 // input records dropped: buffer full
	reported int64        // dropped already reported in the file

	f    *os.File
	wake chan struct{}
	done chan struct{}
}

// CreateJSONL creates (truncates) path with the default writer options.
func CreateJSONL(path string, tees ...Timeline) (*JSONLTimeline, error) {
	return CreateJSONLWith(path, WriterOptions{}, tees...)
}

// CreateJSONLWith creates (truncates) path. tees also receive every
// record, on the caller's goroutine.
func CreateJSONLWith(path string, o WriterOptions, tees ...Timeline) (*JSONLTimeline, error) {
	if o.BufferBytes <= 0 {
		o.BufferBytes = DefaultTimelineBuffer
	}
	if o.FlushEvery <= 0 {
		o.FlushEvery = DefaultTimelineFlush
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("timeline: %w", err)
	}
	t := &JSONLTimeline{opts: o, tees: tees, f: f, wake: make(chan struct{}, 1), done: make(chan struct{})}
	t.flushed = sync.NewCond(&t.mu)
	go t.run()
	return t, nil
}

// Append queues rec as one line. An encoding or write error is kept (Err)
// and later records are still taken: evidence is best effort, never a
// reason to stop a session.
func (t *JSONLTimeline) Append(rec kernel.TimelineRecord) {
	line, err := json.Marshal(rec)
	if err == nil {
		line = append(line, '\n')
		t.mu.Lock()
		switch {
		case t.closed:
		case rec.Input != nil && len(t.buf)+len(line) > t.opts.BufferBytes:
			t.dropped.Add(1)
		default:
			t.buf = append(t.buf, line...)
			t.queued++
			if len(t.buf) >= timelineBatch {
				select {
				case t.wake <- struct{}{}:
				default:
				}
			}
		}
		t.mu.Unlock()
	} else {
		t.keep(fmt.Errorf("timeline: encode %s record: %w", rec.Type, err))
	}
	for _, tee := range t.tees {
		tee.Append(rec)
	}
}

func (t *JSONLTimeline) keep(err error) {
	t.mu.Lock()
	if t.err == nil {
		t.err = err
	}
	t.mu.Unlock()
}

// DroppedInputs counts input records dropped because the buffer was full.
func (t *JSONLTimeline) DroppedInputs() int64 { return t.dropped.Load() }

func (t *JSONLTimeline) run() {
	defer close(t.done)
	tick := time.NewTicker(t.opts.FlushEvery)
	defer tick.Stop()
	for {
		select {
		case <-t.wake:
		case <-tick.C:
		}
		if !t.writeBatch() {
			return
		}
	}
}

// writeBatch writes what is queued; false once closed and drained.
func (t *JSONLTimeline) writeBatch() bool {
	t.mu.Lock()
	if d := t.dropped.Load(); d > t.reported {
		// The file says where its evidence has a hole.
		marker, _ := json.Marshal(kernel.TimelineRecord{Type: "timeline_overflow", Reason: "writer buffer full: input records dropped",
			Attrs: map[string]string{"dropped_inputs": strconv.FormatInt(d-t.reported, 10), "buffer_bytes": strconv.Itoa(t.opts.BufferBytes)}})
		t.buf = append(append(t.buf, marker...), '\n')
		t.reported = d
	}
	buf, n, closed := t.buf, t.queued, t.closed
	t.buf, t.spare = t.spare[:0], nil
	t.mu.Unlock()
	if len(buf) > 0 {
		if _, err := t.f.Write(buf); err != nil {
			t.keep(fmt.Errorf("timeline: %w", err))
		}
	}
	t.mu.Lock()
	if cap(buf) <= 4*timelineBatch {
		t.spare = buf[:0]
	}
	t.written = n
	t.flushed.Broadcast()
	t.mu.Unlock()
	return !closed
}

// Flush waits until every record appended before it is written.
func (t *JSONLTimeline) Flush() {
	t.mu.Lock()
	defer t.mu.Unlock()
	target := t.queued
	for t.written < target && !t.closed {
		select {
		case t.wake <- struct{}{}:
		default:
		}
		t.flushed.Wait()
	}
}

// Err is the first encoding or write error, if any.
func (t *JSONLTimeline) Err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

// Close writes what is queued, syncs and closes the file. Records
// appended afterwards are ignored. Safe to call twice.
func (t *JSONLTimeline) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		<-t.done
		return nil
	}
	t.closed = true
	t.flushed.Broadcast()
	t.mu.Unlock()
	select {
	case t.wake <- struct{}{}:
	default:
	}
	<-t.done
	_ = t.f.Sync()
	return t.f.Close()
}
