package livekit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	lkp "github.com/livekit/protocol/livekit"

	"github.com/rspp/rspp/transports"
)

// AgentStats are a worker's job counters.
type AgentStats struct {
	Offers, Accepted, Rejected, Assigned, JobsEnded, Terminated uint64
	Sessions, Rooms                                             int
	RoomFull, VideoIgnored                                      uint64
	Reconnects                                                  uint64
}

// Agent is rspp registered as a LiveKit agent worker: a
// transports.Listener whose connections are the participants of the
// rooms it is dispatched to.
type Agent struct {
	opts Options

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	accept chan *Conn

	mu       sync.Mutex
	w        *workerConn
	workerID string
	server   *lkp.ServerInfo
	rooms    map[string]*roomSession // job id -> room
	draining bool
	closed   bool
	stats    AgentStats
	idle     chan struct{} // closed when draining and no room is left
}

// NewAgent registers with the server; it fails with ErrUnauthorized,
// ErrUnreachable, ErrProtocol or ErrConfig, naming what was wrong.
func NewAgent(ctx context.Context, o Options) (*Agent, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	QuietSDK()
	w, info, err := dialWorker(ctx, &o)
	if err != nil {
		return nil, err
	}
	actx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a := &Agent{opts: o, ctx: actx, cancel: cancel, accept: make(chan *Conn, 64), w: w, workerID: w.workerID, server: info,
		rooms: map[string]*roomSession{}, idle: make(chan struct{})}
	o.Log("livekit worker registered", "url", o.URL, "worker", w.workerID, "agent_name", o.AgentName, "server", info.GetVersion())
	a.wg.Add(2)
	go a.readLoop(w)
	go a.loadLoop()
	return a, nil
}

// WorkerID is the id the server gave this worker.
func (a *Agent) WorkerID() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.workerID
}

// Stats returns the worker's counters.
func (a *Agent) Stats() AgentStats {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.stats
	s.Rooms = len(a.rooms)
	return s
}

// Accept implements transports.Listener: the next participant session.
func (a *Agent) Accept(ctx context.Context) (transports.Conn, error) {
	select {
	case c := <-a.accept:
		return c, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", transports.ErrListenerClosed, ctx.Err())
	case <-a.ctx.Done():
		return nil, transports.ErrListenerClosed
	}
}

// Drain stops taking jobs (the server is told the worker is full) and
// lets the rooms it has run to their end. Idle is closed once none is
// left.
func (a *Agent) Drain() {
	a.mu.Lock()
	if a.draining {
		a.mu.Unlock()
		return
	}
	a.draining = true
	a.checkIdleLocked()
	a.mu.Unlock()
	a.opts.Log("livekit worker draining", "worker", a.WorkerID())
	a.reportLoad()
}

// Idle is closed once the worker drains and no room is left.
func (a *Agent) Idle() <-chan struct{} { return a.idle }

func (a *Agent) checkIdleLocked() {
	if a.draining && len(a.rooms) == 0 {
		select {
		case <-a.idle:
		default:
			close(a.idle)
		}
	}
}

// Close implements transports.Listener: it leaves every room (their
// sessions end as lost), deregisters and waits for its goroutines.
func (a *Agent) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	rooms := make([]*roomSession, 0, len(a.rooms))
	for _, r := range a.rooms {
		rooms = append(rooms, r)
	}
	w := a.w
	a.mu.Unlock()
	for _, r := range rooms {
		r.leave(fmt.Errorf("%w: worker stopping", transports.ErrConnectionLost))
	}
	a.cancel()
	if w != nil {
		w.close()
	}
	a.wg.Wait()
	return nil
}

// load is the figure reported to the server.
func (a *Agent) load() float32 {
	if a.opts.Load != nil {
		return min(max(a.opts.Load(), 0), 1)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return float32(a.usedLocked()) / float32(a.opts.MaxSessions)
}

// usedLocked counts sessions, and a room without one yet as one.
func (a *Agent) usedLocked() int {
	n := 0
	for _, r := range a.rooms {
		n += max(1, r.sessionCount())
	}
	return n
}

func (a *Agent) reportLoad() {
	a.mu.Lock()
	w, draining, jobs := a.w, a.draining, len(a.rooms)
	a.mu.Unlock()
	if w == nil {
		return
	}
	st := lkp.WorkerStatus_WS_AVAILABLE
	load := a.load()
	if draining || load >= 1 {
		st = lkp.WorkerStatus_WS_FULL
	}
	_ = w.send(a.ctx, &lkp.WorkerMessage{Message: &lkp.WorkerMessage_UpdateWorker{UpdateWorker: &lkp.UpdateWorkerStatus{
		Status: &st, Load: load, JobCount: uint32(jobs), Draining: draining}}})
}

func (a *Agent) loadLoop() {
	defer a.wg.Done()
	t := time.NewTicker(a.opts.LoadInterval)
	defer t.Stop()
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-t.C:
			a.reportLoad()
		}
	}
}

// readLoop serves the server's messages; when the connection breaks it
// registers again (with backoff) while the agent lives. Rooms already
// joined are WebRTC sessions of their own and go on.
func (a *Agent) readLoop(w *workerConn) {
	defer a.wg.Done()
	backoff := 200 * time.Millisecond
	for {
		err := a.serve(w)
		if a.ctx.Err() != nil {
			return
		}
		a.opts.Log("livekit worker connection lost; registering again", "error", err.Error())
		for {
			select {
			case <-a.ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 5*time.Second)
			nw, _, err := dialWorker(a.ctx, &a.opts)
			if err != nil {
				a.opts.Log("livekit worker register", "error", err.Error())
				continue
			}
			a.mu.Lock()
			a.w, a.workerID = nw, nw.workerID
			a.stats.Reconnects++
			a.mu.Unlock()
			w = nw
			backoff = 200 * time.Millisecond
			a.reportLoad()
			break
		}
	}
}

func (a *Agent) serve(w *workerConn) error {
	for {
		m, err := w.recv(a.ctx)
		if err != nil {
			return err
		}
		switch msg := m.Message.(type) {
		case *lkp.ServerMessage_Availability:
			a.offer(w, msg.Availability.GetJob())
		case *lkp.ServerMessage_Assignment:
			a.assigned(msg.Assignment)
		case *lkp.ServerMessage_Termination:
			a.terminate(msg.Termination.GetJobId())
		}
	}
}

// offer answers a job offer from the worker's own figures: a draining
// or full worker declines, so the server offers the job to another.
func (a *Agent) offer(w *workerConn, job *lkp.Job) {
	full := a.opts.Load != nil && a.opts.Load() >= 1
	a.mu.Lock()
	a.stats.Offers++
	ok := !full && !a.draining && !a.closed && a.usedLocked() < a.opts.MaxSessions
	if ok {
		a.stats.Accepted++
	} else {
		a.stats.Rejected++
	}
	a.mu.Unlock()
	resp := &lkp.AvailabilityResponse{JobId: job.GetId(), Available: ok}
	if ok {
		resp.ParticipantIdentity = "rspp-agent-" + job.GetId()
		resp.ParticipantName = a.opts.AgentName
	}
	_ = w.send(a.ctx, &lkp.WorkerMessage{Message: &lkp.WorkerMessage_Availability{Availability: resp}})
}

func (a *Agent) assigned(as *lkp.JobAssignment) {
	job := as.GetJob()
	url := a.opts.URL
	if as.Url != nil && *as.Url != "" {
		url = *as.Url
	}
	r := newRoomSession(a, job, url, as.GetToken())
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return
	}
	a.rooms[job.GetId()] = r
	a.stats.Assigned++
	a.mu.Unlock()
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		r.run()
	}()
	a.reportLoad()
}

func (a *Agent) terminate(jobID string) {
	a.mu.Lock()
	r := a.rooms[jobID]
	a.stats.Terminated++
	a.mu.Unlock()
	if r != nil {
		r.leave(fmt.Errorf("%w: job %s terminated by the server", transports.ErrClientClosed, jobID))
	}
}

// deliver hands a participant session to Accept.
func (a *Agent) deliver(c *Conn) bool {
	select {
	case a.accept <- c:
		a.mu.Lock()
		a.stats.Sessions++
		a.mu.Unlock()
		return true
	case <-a.ctx.Done():
		return false
	}
}

// jobEnded: the room is over; the server is told the job succeeded (or
// failed, with why).
func (a *Agent) jobEnded(r *roomSession, jobErr error) {
	a.mu.Lock()
	delete(a.rooms, r.jobID)
	a.stats.JobsEnded++
	w := a.w
	a.checkIdleLocked()
	a.mu.Unlock()
	st := &lkp.UpdateJobStatus{JobId: r.jobID, Status: lkp.JobStatus_JS_SUCCESS}
	if jobErr != nil && !errors.Is(jobErr, transports.ErrClientClosed) {
		st.Status, st.Error = lkp.JobStatus_JS_FAILED, jobErr.Error()
	}
	if w != nil && a.ctx.Err() == nil {
		_ = w.send(a.ctx, &lkp.WorkerMessage{Message: &lkp.WorkerMessage_UpdateJob{UpdateJob: st}})
	}
	a.reportLoad()
}
