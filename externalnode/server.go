package externalnode

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/rspp/rspp/kernel/eventabi"
	rsppv1 "github.com/rspp/rspp/proto/rspp/v1"
)

// DefaultInputWindow is the per-invocation input window a plugin offers
// when its Info sets none: the host sends at most this many input events of
// one invocation that the node has not consumed yet.
const DefaultInputWindow = 64

var errCallCancelled = errors.New("invocation cancelled")

// ErrEventTooLarge is returned by Call.Emit for an event that would not fit
// in one message of the wire (MaxMessageBytes). Nothing was sent; the
// invocation and the instance go on.
var ErrEventTooLarge = errors.New("event too large for the node protocol")

// errFlowViolation ends an invocation whose host sent more input than the
// window allowed: the recv loop never blocks on one invocation, so an
// overrun cannot be held back; it is a protocol error.
var errFlowViolation = errors.New("host exceeded the invocation's input window")

// server is the plugin-side implementation of the Node service.
type server struct {
	rsppv1.UnimplementedNodeServer
	impl   Node
	window int

	mu    sync.Mutex
	calls map[string]*serverCall
	// early holds cancels that overtook their OPEN (Control and Data are
	// separate streams, so this can happen); bounded FIFO.
	early      map[string]bool
	earlyOrder []string

	idempotent bool        // Info.Idempotent: dedupe by idempotency key
	dedupe     dedupeCache // results of idempotent invocations (dedupe.go)
}

// maxEarlyCancels bounds the memory of cancels for not-yet-open invocations.
const maxEarlyCancels = 1024

// serverCall is one invocation inside the plugin. The Data recv loop
// hands an input straight to the node when the node is waiting for one
// and nothing is queued before it; otherwise it appends it to queue (never
// blocking: the host keeps within the window) and the call's pump hands
// the queue to the node one by one. Credit goes back as the node takes
// inputs, either way.
type serverCall struct {
	call   *Call
	ctx    context.Context
	cancel context.CancelCauseFunc

	mu        sync.Mutex
	queue     []eventabi.Event
	busy      bool  // the pump holds an input taken from queue
	consumed  int   // inputs the node took since the last CREDIT
	closed    bool  // CLOSE_INPUT seen
	violation error // the host broke flow control
	wake      chan struct{}

	rec *recorder // idempotent: its outputs, for dedupe
	key string    // its idempotency key
}

func inputWindow(info Info) int {
	if info.InputWindow > 0 {
		return info.InputWindow
	}
	return DefaultInputWindow
}

func newServer(impl Node) *server {
	info := impl.Info()
	return &server{impl: impl, window: inputWindow(info), calls: make(map[string]*serverCall), early: make(map[string]bool),
		idempotent: info.Idempotent}
}

func (s *server) Describe(context.Context, *rsppv1.DescribeRequest) (*rsppv1.NodeInfo, error) {
	info := s.impl.Info()
	out := &rsppv1.NodeInfo{Name: info.Name, Kind: info.Kind, Version: info.Version, ProtocolVersion: ProtocolVersion,
		InputWindow: uint32(s.window), Idempotent: info.Idempotent}
	for _, t := range info.Accepts {
		out.Accepts = append(out.Accepts, string(t))
	}
	for _, t := range info.Emits {
		out.Emits = append(out.Emits, string(t))
	}
	out.Capabilities = capsToWire(info.Caps)
	return out, nil
}

func (s *server) Configure(ctx context.Context, req *rsppv1.ConfigureRequest) (*rsppv1.ConfigureResponse, error) {
	cfg := Config{NodeID: req.NodeId, Dir: req.ConfigDir, Raw: req.ConfigJson}
	if err := s.impl.Configure(ctx, cfg); err != nil {
		return nil, toStatus(err)
	}
	return &rsppv1.ConfigureResponse{}, nil
}

func (s *server) Health(context.Context, *rsppv1.HealthRequest) (*rsppv1.HealthReply, error) {
	s.mu.Lock()
	n := len(s.calls)
	s.mu.Unlock()
	return &rsppv1.HealthReply{Serving: true, OpenInvocations: uint32(n)}, nil
}

// Data multiplexes invocations over one stream. Invoke runs in its own
// goroutine per invocation; sends are serialised. The recv loop never
// waits on an invocation: inputs are queued within the window the host
// respects, so a node that stops reading holds up nobody else.
func (s *server) Data(stream rsppv1.Node_DataServer) error {
	var sendMu sync.Mutex
	send := func(f *rsppv1.DataFrame) error {
		sendMu.Lock()
		defer sendMu.Unlock()
		return stream.Send(f)
	}
	var wg sync.WaitGroup
	mine := make(map[string]*serverCall) // calls opened on this stream
	defer func() {
		for _, sc := range mine {
			sc.cancel(errCallCancelled)
		}
		wg.Wait()
	}()
	for {
		f, err := stream.Recv()
		if err != nil {
			return nil // host went away: cancel everything opened here
		}
		switch f.Kind {
		case rsppv1.DataFrame_KIND_OPEN:
			if _, dup := mine[f.InvocationId]; dup || f.InvocationId == "" {
				continue // the host never does this; ignore rather than die
			}
			s.reap(mine)
			if s.idempotent && f.IdempotencyKey != "" {
				if evs, ok := s.dedupe.lookup(f.IdempotencyKey); ok {
					// A retry of an invocation this instance already ran
					// to success: answer it from the record.
					wg.Add(1)
					go func() {
						defer wg.Done()
						replay(f, evs, send)
					}()
					continue
				}
			}
			sc := s.open(stream.Context(), f, send)
			mine[f.InvocationId] = sc
			wg.Add(2)
			go func() {
				defer wg.Done()
				s.run(sc, send)
			}()
			go func() {
				defer wg.Done()
				s.pump(sc, send)
			}()
		case rsppv1.DataFrame_KIND_EVENT:
			if sc := mine[f.InvocationId]; sc != nil {
				s.enqueue(sc, fromWire(f.Event))
			}
		case rsppv1.DataFrame_KIND_CLOSE_INPUT:
			if sc := mine[f.InvocationId]; sc != nil {
				sc.mu.Lock()
				sc.closed = true
				sc.mu.Unlock()
				sc.poke()
			}
		}
	}
}

// enqueue queues one input. More than a window of unconsumed input is the
// host's protocol violation: the invocation fails, the stream goes on.
func (s *server) enqueue(sc *serverCall, ev eventabi.Event) {
	sc.mu.Lock()
	if sc.closed || sc.violation != nil || sc.ctx.Err() != nil {
		sc.mu.Unlock()
		return
	}
	if len(sc.queue) >= s.window {
		sc.violation = fmt.Errorf("%w: more than %d unconsumed inputs", errFlowViolation, s.window)
		sc.queue = nil
		sc.mu.Unlock()
		sc.cancel(sc.violation)
		return
	}
	if len(sc.queue) == 0 && !sc.busy {
		// Nothing is ahead of ev: if the node waits for input, it takes
		// ev now, without a hop through the pump.
		select {
		case sc.call.in <- ev:
			sc.consumed++
			grant := sc.consumed >= s.creditBatch()
			sc.mu.Unlock()
			if grant {
				sc.poke() // the pump sends the CREDIT
			}
			return
		default:
		}
	}
	sc.queue = append(sc.queue, ev)
	sc.mu.Unlock()
	sc.poke()
}

// creditBatch is how many taken inputs one CREDIT frame grants: half a
// window, so a steady stream costs one CREDIT per window/2 inputs while
// the host never runs dry.
func (s *server) creditBatch() int { return max(1, s.window/2) }

func (sc *serverCall) poke() {
	select {
	case sc.wake <- struct{}{}:
	default:
	}
}

// pump hands queued inputs to the node and grants credit for the inputs
// the node took (from the pump or straight from the recv loop), in batches
// of creditBatch.
func (s *server) pump(sc *serverCall, send func(*rsppv1.DataFrame) error) {
	batch := s.creditBatch()
	for {
		sc.mu.Lock()
		if sc.consumed >= batch {
			n := sc.consumed
			sc.consumed = 0
			sc.mu.Unlock()
			if send(&rsppv1.DataFrame{Kind: rsppv1.DataFrame_KIND_CREDIT, InvocationId: sc.call.ID, Credit: uint32(n)}) != nil {
				return
			}
			continue
		}
		if len(sc.queue) == 0 {
			closed := sc.closed
			sc.mu.Unlock()
			if closed {
				close(sc.call.in)
				return
			}
			select {
			case <-sc.wake:
				continue
			case <-sc.ctx.Done():
				return
			}
		}
		ev := sc.queue[0]
		sc.queue[0] = eventabi.Event{}
		sc.queue = sc.queue[1:]
		sc.busy = true
		sc.mu.Unlock()
		select {
		case sc.call.in <- ev:
		case <-sc.ctx.Done():
			return
		}
		sc.mu.Lock()
		sc.busy = false
		sc.consumed++
		sc.mu.Unlock()
	}
}

// reap forgets finished calls of this stream so the map stays bounded. It
// runs on OPEN only, so the per-frame path stays O(1).
func (s *server) reap(mine map[string]*serverCall) {
	for id, sc := range mine {
		if sc.ctx.Err() != nil {
			delete(mine, id)
		}
	}
}

func (s *server) open(parent context.Context, f *rsppv1.DataFrame, send func(*rsppv1.DataFrame) error) *serverCall {
	ctx, cancel := context.WithCancelCause(parent)
	sc := &serverCall{ctx: ctx, cancel: cancel, wake: make(chan struct{}, 1)}
	id := f.InvocationId
	sc.call = &Call{
		ID: id, SessionID: f.SessionId, TurnID: f.TurnId, NodeID: f.NodeId, Epoch: f.AuthorityEpoch, IdempotencyKey: f.IdempotencyKey,
		Deadline: deadlineOf(f.DeadlineUnixNs),
		in:       make(chan eventabi.Event),
		emit: func(ev eventabi.Event) error {
			if ctx.Err() != nil {
				return errCallCancelled // output after cancel never leaves the plugin
			}
			out := newWireFrame(id, &ev)
			if n := proto.Size(out); n > MaxMessageBytes {
				return fmt.Errorf("%w: %s event is %d bytes on the wire, limit %d", ErrEventTooLarge, ev.Type, n, MaxMessageBytes)
			}
			if sc.rec != nil {
				sc.rec.add(out.Event)
			}
			return send(out)
		},
	}
	if s.idempotent && f.IdempotencyKey != "" {
		sc.rec, sc.key = &recorder{}, f.IdempotencyKey
	}
	s.mu.Lock()
	s.calls[id] = sc
	if s.early[id] {
		delete(s.early, id)
		cancel(errCallCancelled)
	}
	s.mu.Unlock()
	return sc
}

func (s *server) run(sc *serverCall, send func(*rsppv1.DataFrame) error) {
	err := s.invoke(sc)
	cancelled := sc.ctx.Err() != nil
	sc.cancel(nil)
	s.mu.Lock()
	delete(s.calls, sc.call.ID)
	s.mu.Unlock()
	sc.mu.Lock()
	violation := sc.violation
	sc.mu.Unlock()
	end := &rsppv1.DataFrame{Kind: rsppv1.DataFrame_KIND_END, InvocationId: sc.call.ID}
	switch {
	case violation != nil:
		end.Error = &rsppv1.InvocationError{Kind: rsppv1.ErrorKind_ERROR_KIND_PROTOCOL, Message: violation.Error()}
	case cancelled:
		// Whatever the node returned, a cancelled invocation ends as
		// cancelled: the host asked for it.
		end.Error = toInvocationError(fmt.Errorf("%w: %v", errCallCancelled, err))
	case err != nil:
		end.Error = toInvocationError(err)
	case sc.rec != nil:
		if evs, ok := sc.rec.result(); ok {
			s.dedupe.store(sc.key, evs)
		}
	}
	_ = send(end) // the host may be gone; nothing else to do
}

// invoke runs the author's code; a panic fails this invocation only.
func (s *server) invoke(sc *serverCall) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic in node: %v", r)
		}
	}()
	return s.impl.Invoke(sc.ctx, sc.call)
}

// Control carries cancels and pings; it never waits behind data.
func (s *server) Control(stream rsppv1.Node_ControlServer) error {
	for {
		req, err := stream.Recv()
		if err != nil {
			return nil
		}
		reply := &rsppv1.ControlReply{Seq: req.Seq}
		if req.Kind == rsppv1.ControlRequest_KIND_CANCEL {
			reply.Found = s.cancel(req.InvocationId)
		}
		if err := stream.Send(reply); err != nil {
			return nil
		}
	}
}

// cancel cancels a running invocation, or remembers the cancel for an OPEN
// that has not arrived yet.
func (s *server) cancel(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sc := s.calls[id]; sc != nil {
		sc.cancel(errCallCancelled)
		return true
	}
	if !s.early[id] {
		if len(s.earlyOrder) >= maxEarlyCancels {
			delete(s.early, s.earlyOrder[0])
			s.earlyOrder = s.earlyOrder[1:]
		}
		s.early[id] = true
		s.earlyOrder = append(s.earlyOrder, id)
	}
	return false
}
