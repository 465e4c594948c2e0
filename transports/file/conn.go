package file

import (
	"context"
	"sync"

	"github.com/rspp/rspp/kernel/eventabi"
	"github.com/rspp/rspp/transports"
)

// Conn is the file transport as a transports.Conn: one session whose
// inbound frames are a WAV's (paced like a microphone when Realtime,
// with trailing silence) and whose agent audio is written to a Sink. Its
// input ends normally at the end of the file (Err nil): the runtime lets
// the last turn finish before it closes the session.
type Conn struct {
	route transports.Route
	src   Source
	sink  *Sink

	in      chan eventabi.Event
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
	mu      sync.Mutex
	err     error
	started bool
}

// NewConn makes the connection of one session; it starts reading at Bind.
func NewConn(route transports.Route, src Source, sink *Sink) *Conn {
	return &Conn{route: route, src: src, sink: sink, in: make(chan eventabi.Event), stop: make(chan struct{}), done: make(chan struct{})}
}

// Route implements transports.Conn.
func (c *Conn) Route() transports.Route { return c.route }

// Bind implements transports.Conn: the file starts playing.
func (c *Conn) Bind(transports.Binding) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.started {
		c.started = true
		go c.play()
	}
	return nil
}

// Inbound implements transports.Conn.
func (c *Conn) Inbound() <-chan eventabi.Event { return c.in }

func (c *Conn) play() {
	defer close(c.done)
	defer close(c.in)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-c.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	err := c.src.Play(ctx, chanIngester{ctx: ctx, ch: c.in})
	if err != nil && ctx.Err() == nil {
		c.setErr(err)
	}
}

// chanIngester hands Source.Play's frames to the inbound channel.
type chanIngester struct {
	ctx context.Context
	ch  chan<- eventabi.Event
}

func (ci chanIngester) Ingest(ev eventabi.Event) error {
	select {
	case ci.ch <- ev:
		return nil
	case <-ci.ctx.Done():
		return ci.ctx.Err()
	}
}

// Send implements transports.Conn: agent audio goes to the output WAV.
func (c *Conn) Send(ev eventabi.Event) error { return c.sink.Send(ev) }

// Fence implements transports.Conn (the sink buffers nothing; it refuses
// later output of the turn).
func (c *Conn) Fence(turnID, reason string) { c.sink.Fence(turnID, reason) }

// Notify implements transports.Conn: a file has no one to show it to.
func (c *Conn) Notify(transports.Notice) {}

// Refuse implements transports.Conn: the input stops, Err says why.
func (c *Conn) Refuse(err error) {
	c.setErr(err)
	c.halt()
}

// Close implements transports.Conn and waits for the input to stop; the
// output WAV is finished by its owner (Sink.Close). Safe to call twice.
func (c *Conn) Close(string) {
	c.halt()
	c.mu.Lock()
	started := c.started
	c.mu.Unlock()
	if started {
		<-c.done
	}
}

func (c *Conn) halt() { c.once.Do(func() { close(c.stop) }) }

// Err implements transports.Conn: nil at the end of the file.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *Conn) setErr(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = err
	}
}

var _ transports.Conn = (*Conn)(nil)
