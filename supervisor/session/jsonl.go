package session

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/kernel/record"
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
// only queues the record (the session loop pays for a slice append under
// a short lock): it never encodes, never does I/O and never waits on the
// disk. One writer goroutine encodes and writes the queue in batches.
// Append takes the record over: neither it nor its Attrs or Input may be
// changed afterwards (the kernel and the recording layer make each afresh).
// Safe for concurrent use by many sessions.
type JSONLTimeline struct {
	opts WriterOptions
	tees []Timeline

	mu      sync.Mutex
	queue   []kernel.TimelineRecord // not yet written
	spare   []kernel.TimelineRecord
	pending int    // estimated encoded bytes of queue
	queued  uint64 // records queued so far
	written uint64 // records written so far
	flushed *sync.Cond
	closed  bool
	err     error

	dropped  atomic.Int64 // input records dropped: buffer full
	reported int64        // dropped already reported in the file

	f    *os.File
	out  []byte // the writer's encoding buffer
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
	size := recordBytes(rec)
	t.mu.Lock()
	switch {
	case t.closed:
	case rec.Input != nil && t.pending+size > t.opts.BufferBytes:
		t.dropped.Add(1)
	default:
		t.queue = append(t.queue, rec)
		t.pending += size
		t.queued++
		if t.pending >= timelineBatch {
			select {
			case t.wake <- struct{}{}:
			default:
			}
		}
	}
	t.mu.Unlock()
	for _, tee := range t.tees {
		tee.Append(rec)
	}
}

// recordBytes estimates a record's encoded size (the buffer's measure).
func recordBytes(rec kernel.TimelineRecord) int {
	n := 160 + len(rec.SessionID) + len(rec.TurnID) + len(rec.Type) + len(rec.Reason) + len(rec.NodeID) + len(rec.InvocationID)
	for k, v := range rec.Attrs {
		n += len(k) + len(v) + 6
	}
	if rec.Input != nil {
		n += int(record.InputBytes(rec.Input))
	}
	return n
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

// writeBatch encodes and writes what is queued; false once closed and
// drained.
func (t *JSONLTimeline) writeBatch() bool {
	t.mu.Lock()
	if d := t.dropped.Load(); d > t.reported {
		// The file says where its evidence has a hole.
		t.queue = append(t.queue, kernel.TimelineRecord{Type: "timeline_overflow", Reason: "writer buffer full: input records dropped",
			Attrs: map[string]string{"dropped_inputs": strconv.FormatInt(d-t.reported, 10), "buffer_bytes": strconv.Itoa(t.opts.BufferBytes)}})
		t.reported = d
	}
	queue, n, closed := t.queue, t.queued, t.closed
	t.queue, t.spare, t.pending = t.spare[:0], nil, 0
	t.mu.Unlock()
	buf := t.out[:0]
	for i := range queue {
		line, err := json.Marshal(&queue[i])
		if err != nil {
			t.keep(fmt.Errorf("timeline: encode %s record: %w", queue[i].Type, err))
			continue
		}
		buf = append(append(buf, line...), '\n')
	}
	if len(buf) > 0 {
		if _, err := t.f.Write(buf); err != nil {
			t.keep(fmt.Errorf("timeline: %w", err))
		}
	}
	if cap(buf) <= 4*timelineBatch {
		t.out = buf[:0]
	}
	clear(queue)
	t.mu.Lock()
	if cap(queue) <= 1<<16 {
		t.spare = queue[:0]
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
