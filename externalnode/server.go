package externalnode

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/rspp/rspp/kernel/eventabi"
	rsppv1 "github.com/rspp/rspp/proto/rspp/v1"
)

// inputBuffer bounds the events queued for one invocation inside the
// plugin; past it the Data stream applies gRPC flow control to the host.
const inputBuffer = 256

var errCallCancelled = errors.New("invocation cancelled")

// server is the plugin-side implementation of the Node service.
type server struct {
	rsppv1.UnimplementedNodeServer
	impl Node

	mu    sync.Mutex
	calls map[string]*serverCall
	// early holds cancels that overtook their OPEN (Control and Data are
	// separate streams, so this can happen); bounded FIFO.
	early      map[string]bool
	earlyOrder []string
}

// maxEarlyCancels bounds the memory of cancels for not-yet-open invocations.
const maxEarlyCancels = 1024

type serverCall struct {
	call   *Call
	ctx    context.Context
	cancel context.CancelCauseFunc
	closed bool // inputs closed; only the Data recv loop touches it
}

func newServer(impl Node) *server {
	return &server{impl: impl, calls: make(map[string]*serverCall), early: make(map[string]bool)}
}

func (s *server) Describe(context.Context, *rsppv1.DescribeRequest) (*rsppv1.NodeInfo, error) {
	info := s.impl.Info()
	out := &rsppv1.NodeInfo{Name: info.Name, Kind: info.Kind, Version: info.Version, ProtocolVersion: ProtocolVersion}
	for _, t := range info.Accepts {
		out.Accepts = append(out.Accepts, string(t))
	}
	for _, t := range info.Emits {
		out.Emits = append(out.Emits, string(t))
	}
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
// goroutine per invocation; sends are serialised.
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
			sc := s.open(stream.Context(), f, send)
			mine[f.InvocationId] = sc
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.run(sc, send)
			}()
		case rsppv1.DataFrame_KIND_EVENT:
			sc := mine[f.InvocationId]
			if sc == nil || sc.closed {
				continue
			}
			select {
			case sc.call.in <- fromWire(f.Event):
			case <-sc.ctx.Done():
			}
		case rsppv1.DataFrame_KIND_CLOSE_INPUT:
			if sc := mine[f.InvocationId]; sc != nil && !sc.closed {
				sc.closed = true
				close(sc.call.in)
			}
		}
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
	sc := &serverCall{ctx: ctx, cancel: cancel}
	id := f.InvocationId
	sc.call = &Call{
		ID: id, SessionID: f.SessionId, TurnID: f.TurnId, NodeID: f.NodeId,
		in: make(chan eventabi.Event, inputBuffer),
		emit: func(ev eventabi.Event) error {
			if ctx.Err() != nil {
				return errCallCancelled // output after cancel never leaves the plugin
			}
			return send(&rsppv1.DataFrame{Kind: rsppv1.DataFrame_KIND_EVENT, InvocationId: id, Event: toWire(&ev)})
		},
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
	end := &rsppv1.DataFrame{Kind: rsppv1.DataFrame_KIND_END, InvocationId: sc.call.ID}
	if cancelled {
		// Whatever the node returned, a cancelled invocation ends as
		// cancelled: the host asked for it.
		err = fmt.Errorf("%w: %v", errCallCancelled, err)
	}
	if err != nil {
		end.Error = toInvocationError(err)
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
